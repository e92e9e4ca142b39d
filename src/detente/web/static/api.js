// The HTTP API as the signed-in party: JSON calls, and the live event stream.
// The stream is read with fetch (EventSource cannot send an Authorization header).

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async call(method, path, body, extra = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, ...extra };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(`/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new ApiError(r.status, data || {});
    return data;
  }

  get(path) { return this.call("GET", path); }
  post(path, body) { return this.call("POST", path, body ?? {}); }
  put(path, body, version) { return this.call("PUT", path, body, { "If-Match": `"${version}"` }); }
  delete(path) { return this.call("DELETE", path); }

  // Calls onEvent(event) for each event after `after`, reconnecting with the last id
  // seen (nothing is lost); onState(true/false) tells whether the stream is up.
  // Returns a function that stops it.
  stream(after, onEvent, onState) {
    let stopped = false;
    let last = after;
    let controller = null;
    const run = async () => {
      while (!stopped) {
        controller = new AbortController();
        try {
          const headers = { Authorization: `Bearer ${this.token}`, Accept: "text/event-stream" };
          if (last !== null) headers["Last-Event-ID"] = String(last);
          const r = await fetch("/v1/events", { headers, signal: controller.signal });
          if (!r.ok) throw new ApiError(r.status, {});
          onState(true);
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              const data = block.split("\n").filter((l) => l.startsWith("data:"))
                .map((l) => l.slice(5).trim()).join("\n");
              if (data) {
                const event = JSON.parse(data);
                last = event.id;
                onEvent(event);
              }
            }
          }
        } catch (e) {
          if (stopped) return;
          if (e instanceof ApiError && e.status === 401) { onState(false); return; }
        }
        onState(false);
        if (!stopped) await new Promise((ok) => setTimeout(ok, 1000));
      }
    };
    run();
    return () => { stopped = true; if (controller) controller.abort(); };
  }
}
