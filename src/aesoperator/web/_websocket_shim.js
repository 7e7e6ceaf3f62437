// Every reading tab runs this before a page's own scripts: WebSocket answered by the session
// (see _reader_ws.py). Kept small: it runs in every frame of every page.
(() => {
  const post = globalThis.__aesopWs;
  if (typeof post !== 'function' || globalThis.__aesopWsIn) return;
  try { delete globalThis.__aesopWs; } catch (e) {}
  const sockets = new Map();
  let next = 0;
  const salt = Math.random().toString(36).slice(2);
  const b64 = (buf) => { let s = ''; const a = new Uint8Array(buf);
    for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode.apply(null, a.subarray(i, i + 0x8000));
    return btoa(s); };
  const unb64 = (s) => { const t = atob(s); const a = new Uint8Array(t.length);
    for (let i = 0; i < t.length; i++) a[i] = t.charCodeAt(i); return a.buffer; };
  class WebSocket extends EventTarget {
    constructor(url, protocols) {
      super();
      let u;
      try { u = new URL(url, location.href); } catch (e) { throw new DOMException('Invalid URL ' + url, 'SyntaxError'); }
      if (u.protocol === 'http:') u.protocol = 'ws:';
      if (u.protocol === 'https:') u.protocol = 'wss:';
      if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new DOMException('Bad scheme ' + u.protocol, 'SyntaxError');
      u.hash = '';
      this._id = salt + ':' + (++next);
      this._url = u.href; this._state = 0; this._protocol = ''; this.binaryType = 'blob';
      this.onopen = null; this.onmessage = null; this.onerror = null; this.onclose = null;
      const list = protocols === undefined ? [] : (Array.isArray(protocols) ? protocols : [protocols]).map(String);
      sockets.set(this._id, this);
      post(JSON.stringify({op: 'open', id: this._id, url: this._url, protocols: list}));
    }
    get url() { return this._url; }
    get readyState() { return this._state; }
    get protocol() { return this._protocol; }
    get extensions() { return ''; }
    get bufferedAmount() { return 0; }
    send(data) {
      if (this._state === 0) throw new DOMException('Still in CONNECTING state.', 'InvalidStateError');
      if (this._state !== 1) return;
      const id = this._id;
      if (typeof data === 'string') { post(JSON.stringify({op: 'send', id, text: data})); return; }
      if (data instanceof Blob) { data.arrayBuffer().then((b) => post(JSON.stringify({op: 'send', id, bytes: b64(b)}))); return; }
      const buf = ArrayBuffer.isView(data) ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data;
      post(JSON.stringify({op: 'send', id, bytes: b64(buf)}));
    }
    close(code, reason) {
      if (this._state >= 2) return;
      this._state = 2;
      post(JSON.stringify({op: 'close', id: this._id, code: code === undefined ? null : code, reason: reason || ''}));
    }
    _fire(type, init) {
      const ev = type === 'message' ? new MessageEvent('message', init) :
        type === 'close' ? new CloseEvent('close', init) : new Event(type);
      const handler = this['on' + type];
      if (typeof handler === 'function') { try { handler.call(this, ev); } catch (e) { setTimeout(() => { throw e; }); } }
      this.dispatchEvent(ev);
    }
  }
  for (const [k, v] of [['CONNECTING', 0], ['OPEN', 1], ['CLOSING', 2], ['CLOSED', 3]]) {
    Object.defineProperty(WebSocket, k, {value: v}); Object.defineProperty(WebSocket.prototype, k, {value: v});
  }
  Object.defineProperty(globalThis, '__aesopWsIn', {value: (id, what, data) => {
    const ws = sockets.get(id);
    if (!ws) return;
    if (what === 'open') { ws._state = 1; ws._protocol = data || ''; ws._fire('open'); }
    else if (what === 'text') ws._fire('message', {data, origin: new URL(ws._url).origin});
    else if (what === 'bytes') {
      const buf = unb64(data);
      ws._fire('message', {data: ws.binaryType === 'arraybuffer' ? buf : new Blob([buf]), origin: new URL(ws._url).origin});
    } else if (what === 'close') {
      const failed = data.code === 1006;
      ws._state = 3; sockets.delete(id);
      if (failed) ws._fire('error');
      ws._fire('close', {code: data.code, reason: data.reason || '', wasClean: !failed});
    }
  }});
  globalThis.WebSocket = WebSocket;
})();
