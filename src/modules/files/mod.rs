//! Files on the host: copy, template, file, lineinfile, blockinfile, replace, assemble, fetch,
//! find, stat, tempfile, unarchive, get_url and uri, git checkouts, recover's own `backup`, and
//! the Kafka checkpoint reader.

pub mod assemble;
pub mod backup;
pub mod blockinfile;
pub mod copy;
pub mod fetch;
pub mod file;
pub mod find;
pub mod git;
pub mod http;
pub mod kafka;
pub mod lineinfile;
pub mod replace;
pub mod stat;
pub mod tempfile;
pub mod unarchive;
