#!/usr/bin/env python3
"""A tiny OpenAI-compatible endpoint for the demo (no outside account).

Answers GET /models (and /v1/models) and POST /chat/completions (JSON, or
SSE when the request has "stream": true) with usage figures. It checks
that a bearer token is present and never prints it. Listens on 127.0.0.1;
prints its port on the first line of stdout.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _authorized(self):
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) < 12:
            self._json(401, {"error": {"message": "missing bearer token"}})
            return False
        return True

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if not self._authorized():
            return
        if self.path.rstrip("/") in ("/models", "/v1/models"):
            self._json(200, {"object": "list", "data": [{"id": "demo-model", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        if not self._authorized():
            return
        usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        if req.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for i, word in enumerate(["Hello", " from", " the", " demo"]):
                ev = {"choices": [{"delta": {"content": word}, "index": 0}]}
                if i == 3:
                    ev["usage"] = usage
                chunk = f"data: {json.dumps(ev)}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            end = b"data: [DONE]\n\n"
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(end), end))
            return
        self._json(200, {
            "id": "chatcmpl-demo",
            "model": req.get("model", "demo-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the demo"}}],
            "usage": usage,
        })


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
