"""A client of llamad's OpenAI-style API, standard library only.

    from llamad_client import Client, LlamadError
    client = Client("http://127.0.0.1:8080", api_key=None)
    for text in client.stream_chat([{"role": "user", "content": "Hi"}], max_tokens=40):
        print(text, end="", flush=True)
    print(client.last_usage)            # the streamed answer's usage
    client.chat(messages, temperature=0)["choices"][0]["message"]["content"]
    client.complete("Once upon a time", max_tokens=20)["choices"][0]["text"]

Keyword arguments are request fields (max_tokens, temperature, top_p, top_k,
seed, stop, session_id, ...). A refusal raises LlamadError, whose .error is the
server's error object ({"message", "type", "param", "code"}) and .status the
HTTP status (an error inside a stream that had begun has status 200).
"""
import http.client
import json
import urllib.parse


class LlamadError(Exception):
    def __init__(self, status, error):
        self.status = status
        self.error = error
        super().__init__("%s %s: %s" % (status, error.get("code") or error.get("type"),
                                         error.get("message")))


class Client:
    def __init__(self, url="http://127.0.0.1:8080", api_key=None, timeout=600):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must be http:// or https://: %r" % url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._base = parts.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.last_usage = None

    def complete(self, prompt, **fields):
        """The non-streamed /v1/completions answer, as a dict."""
        return self._whole("/v1/completions", dict(fields, prompt=prompt))

    def chat(self, messages, **fields):
        """The non-streamed /v1/chat/completions answer, as a dict."""
        return self._whole("/v1/chat/completions", dict(fields, messages=messages))

    def stream_chat(self, messages, **fields):
        """Yields the answer's text piece by piece as the daemon streams it;
        afterwards self.last_usage holds its usage. Closing the iterator early
        closes the connection, which the daemon takes for a cancel."""
        body = dict(fields, messages=messages, stream=True,
                    stream_options={"include_usage": True})
        self.last_usage = None
        for chunk in self._stream("/v1/chat/completions", body):
            if chunk.get("usage"):
                self.last_usage = chunk["usage"]
            for choice in chunk.get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    yield text

    def _connect(self):
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._netloc, timeout=self.timeout)

    def _send(self, path, body):
        conn = self._connect()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        if body.get("session_id"):  # a proxy in front of replicas routes on it
            headers["X-Session-Id"] = body["session_id"]
        conn.request("POST", self._base + path, json.dumps(body).encode(), headers)
        resp = conn.getresponse()
        if resp.status != 200:
            data = resp.read()
            conn.close()
            try:
                error = json.loads(data)["error"]
            except (ValueError, KeyError, TypeError):
                error = {"message": data.decode("utf-8", "replace"), "type": "http_error"}
            raise LlamadError(resp.status, error)
        return conn, resp

    def _whole(self, path, body):
        conn, resp = self._send(path, body)
        try:
            return json.loads(resp.read())
        finally:
            conn.close()

    def _stream(self, path, body):
        """Each event's JSON of a server-sent event stream, until [DONE]."""
        conn, resp = self._send(path, body)
        try:
            data = []
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(" ") else value)
                elif not line and data:
                    event, data = "\n".join(data), []
                    if event == "[DONE]":
                        return
                    chunk = json.loads(event)
                    if "error" in chunk:
                        raise LlamadError(resp.status, chunk["error"])
                    yield chunk
            raise ConnectionError("the stream ended before its [DONE]")
        finally:
            conn.close()
