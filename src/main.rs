fn main() {
    std::process::exit(recover::cli::main());
}
