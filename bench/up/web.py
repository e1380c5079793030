"""A small HTTP server for bench/up.sh: sleeps a startup delay, then answers 200 to any GET.

    python3 web.py PORT DELAY_S NAME TAG     (NAME and TAG only mark the process)
"""
import http.server
import sys
import time

port, delay = int(sys.argv[1]), float(sys.argv[2])
time.sleep(delay)  # a service's start-up work before it listens


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # no access log: the log-throughput figure is the logger's
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
