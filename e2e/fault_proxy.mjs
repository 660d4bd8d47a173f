// A small fault-injecting TCP proxy between the browser and the server, on loopback only.
//   pass      forward everything (the default)
//   blackHole the WebSocket links go silent in both directions (no ping, no close: a half-open
//             link), every other connection is cut, and new connections are refused
//   restore   back to pass for new connections
import net from 'node:net';

export async function startFaultProxy(upstreamPort) {
  let mode = 'pass';
  const conns = new Set();
  const server = net.createServer((client) => {
    if (mode !== 'pass') { client.destroy(); return; }
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    const conn = { client, upstream, websocket: false };
    conns.add(conn);
    const forget = () => { conns.delete(conn); client.destroy(); upstream.destroy(); };
    client.on('data', (chunk) => {
      if (!conn.websocket && /^upgrade: websocket/im.test(chunk.toString('latin1', 0, 2048))) conn.websocket = true;
      if (mode === 'pass' || !conn.websocket) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => { if (mode === 'pass') client.write(chunk); });
    client.on('error', forget); upstream.on('error', forget);
    client.on('close', forget); upstream.on('close', forget);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    blackHole() {
      mode = 'blackHole';
      for (const c of conns) if (!c.websocket) { c.client.destroy(); c.upstream.destroy(); }
    },
    restore() {
      mode = 'pass';
      // The silent links stay dead, as a real half-open link would.
    },
    async close() {
      for (const c of conns) { c.client.destroy(); c.upstream.destroy(); }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A free loopback port. */
export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
