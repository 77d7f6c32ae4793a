"""The loopback HTTP(S) server of the get_url/uri cases (tests/modules): files from a folder
(with Last-Modified and If-Modified-Since, as python's own server), and a few endpoints:
  POST/PUT/PATCH/DELETE any path  -> 200, JSON echo of method, path, body, content type
  /status/NNN                     -> that status
  /redirect                       -> 302 to /hello.txt
  /auth                           -> 401 unless basic auth user:secret
  /named                          -> a file with a Content-Disposition name
usage: httpd.py DIR PORTFILE [CERT KEY]  (binds 127.0.0.1 on a free port, writes it to PORTFILE)
"""
import base64, http.server, json, os, ssl, sys

root, portfile = sys.argv[1], sys.argv[2]

class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass
    def reply(self, code, body=b"", ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def special(self):
        if self.path.startswith("/status/"):
            return self.reply(int(self.path.split("/")[2]), b"status page\n")
        if self.path == "/redirect":
            return self.reply(302, b"", extra=[("Location", "/hello.txt")])
        if self.path == "/auth":
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"user:secret").decode():
                return self.reply(401, b"who are you\n", extra=[("WWW-Authenticate", 'Basic realm="recover"')])
            return self.reply(200, b'{"authorized": true}', "application/json")
        if self.path == "/named":
            return self.reply(200, b"named content\n", extra=[("Content-Disposition", 'attachment; filename="from-header.txt"')])
        return None
    def do_GET(self):
        if self.special() is None:
            super().do_GET()
    def do_HEAD(self):
        if self.special() is None:
            super().do_HEAD()
    def echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode()
        self.reply(200, json.dumps({"method": self.command, "path": self.path, "body": body, "type": self.headers.get("Content-Type")}).encode(), "application/json")
    do_POST = do_PUT = do_PATCH = do_DELETE = echo

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
