// Node `ws` baseline: the documented broadcast of one string to every open client.
//
//   GET /ws/...     WebSocket; sends a small snapshot message, then every broadcast
//   POST /publish   body = one message; ws.send(string) to every client, then 200
//   GET /healthz    200
//
// Usage: node benchmarks/node_ws/server.js --port P [--host 127.0.0.1]
'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const SNAPSHOT = '{"op":"snapshot","seq":"0","events":[]}';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port'));
if (!port) {
  console.error('usage: node server.js --port P [--host H]');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const message = Buffer.concat(chunks).toString();
      let sent = 0;
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) {
          client.send(message);
          sent++;
        }
      }
      const body = String(sent);
      res.writeHead(200, { 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'Content-Length': 2 });
    res.end('ok');
    return;
  }
  res.writeHead(404, { 'Content-Length': 0 });
  res.end();
});

const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.send(SNAPSHOT);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
server.listen(port, host, 4096);
