// A minimal Node.js socket.io 4 backend with what bench/load drives: sessions, bots, the CONNECT
// auth of docs/protocol.md §2 (token → user; refusals as `44{"message"}`), one live socket per
// user (the newer wins, the older is disconnected), a contract event through the dev API (`emit`), and
// the socket counters. In memory; loopback only; for the side-by-side in bench/run, not a backend.
//   node bench/node/server.mjs   (listens on 127.0.0.1, a free port; prints it)
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Server } from 'socket.io';

const sessions = new Map(); // token → userId
const bots = new Map(); // botId → userId
const sockets = new Map(); // userId → socket
let socketsOpen = 0;

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const userOf = (req) => sessions.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
const readBody = (req) => new Promise((resolve) => {
  let data = '';
  req.on('data', (c) => { data += c; });
  req.on('end', () => { try { resolve(JSON.parse(data || '{}')); } catch { resolve({}); } });
});

const http = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/api/auth/session') {
    const { userId } = await readBody(req);
    const token = randomBytes(24).toString('base64url');
    const user = userId ?? `dev_${randomBytes(4).toString('hex')}`;
    sessions.set(token, user);
    return json(res, 200, { token, userId: user, expiresAt: new Date(Date.now() + 3600e3).toISOString() });
  }
  if (url.pathname === '/api/dev/stats') return json(res, 200, { socketsOpen });
  const user = userOf(req);
  if (!user) return json(res, 401, { error: 'unauthorized' });
  if (req.method === 'POST' && url.pathname === '/api/bots') {
    const { name } = await readBody(req);
    const id = `bot_${randomBytes(4).toString('hex')}`;
    bots.set(id, user);
    return json(res, 201, { id, name, status: 'created', phone: null, createdAt: new Date().toISOString(), messages: 0, pairing: null });
  }
  const emit = url.pathname.match(/^\/api\/dev\/bots\/([^/]+)\/emit$/);
  if (req.method === 'POST' && emit && bots.get(emit[1]) === user) {
    const { event, data } = await readBody(req);
    sockets.get(user)?.emit(event, data);
    return json(res, 204);
  }
  return json(res, 404, { error: 'not found' });
});

const io = new Server(http, {
  transports: ['websocket'],
  pingInterval: 600_000,
  pingTimeout: 60_000,
  serveClient: false,
});
io.use((socket, next) => {
  const user = sessions.get(socket.handshake.auth?.token);
  if (!user) return next(new Error('unauthorized'));
  socket.data.user = user;
  next();
});
io.on('connection', (socket) => {
  const user = socket.data.user;
  const older = sockets.get(user);
  sockets.set(user, socket);
  older?.disconnect(true);
  socketsOpen += 1;
  socket.on('disconnect', () => {
    socketsOpen -= 1;
    if (sockets.get(user) === socket) sockets.delete(user);
  });
});

http.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${http.address().port}`));
