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

/**
 * A free loopback port for a process started next, below the kernel's ephemeral range (Linux:
 * 32768–60999). A port the kernel hands out for `listen(0)` comes from that range, and any
 * outgoing connection (a browser's, a node's to PostgreSQL) can take it before the process
 * binds it: "Address already in use", a test failed by chance.
 */
export async function freePort() {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
