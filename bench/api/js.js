// The peer of bench/api-latency.c: a grpc-js server answering
// hsp.v1.Cluster/Info with the same bearer-token check (SHA-256 of the
// secret, constant-time compare) over TLS with the same certificate, and a
// grpc-js client timing N sequential calls against any server.
//   node js.js serve PORT CERT KEY TOKEN      (prints "listening PORT")
//   node js.js call HOST:PORT CA TOKEN N      (prints "js p50_us .. p99_us ..")
'use strict';
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const modules = path.join(__dirname, '..', '..', 'test', 'interop', 'node_modules');
const grpc = require(path.join(modules, '@grpc/grpc-js'));
const loader = require(path.join(modules, '@grpc/proto-loader'));
const def = loader.loadSync(['hsp/v1/hsp.proto'], {
  includeDirs: [path.join(__dirname, '..', '..', 'proto')], keepCase: true, defaults: true,
});
const hsp = grpc.loadPackageDefinition(def).hsp.v1;
const [mode, ...args] = process.argv.slice(2);

if (mode === 'serve') {
  const [port, cert, key, token] = args;
  const parts = token.split('.');
  const want = crypto.createHash('sha256').update(parts[2]).digest();
  const server = new grpc.Server();
  server.addService(hsp.Cluster.service, {
    Info(call, cb) {
      const auth = (call.metadata.get('authorization')[0] || '').toString();
      const p = auth.replace(/^Bearer /, '').split('.');
      const got = crypto.createHash('sha256').update(p[2] || '').digest();
      if (p[1] !== parts[1] || !crypto.timingSafeEqual(got, want))
        return cb({code: grpc.status.UNAUTHENTICATED, details: 'bad token'});
      cb(null, {name: 'js', version: '0', whoami: 'admin', started_at: Date.now()});
    },
  });
  const creds = grpc.ServerCredentials.createSsl(null,
    [{cert_chain: fs.readFileSync(cert), private_key: fs.readFileSync(key)}], false);
  server.bindAsync('127.0.0.1:' + port, creds, (err, p) => {
    if (err) throw err;
    console.log('listening ' + p);
  });
} else if (mode === 'call') {
  const [target, ca, token, n] = args;
  const c = new hsp.Cluster(target, grpc.credentials.createSsl(fs.readFileSync(ca)));
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer ' + token);
  const N = Number(n), lat = [];
  let failed = 0;
  const one = (i) => {
    const t0 = process.hrtime.bigint();
    c.Info({}, md, (err) => {
      const dt = Number(process.hrtime.bigint() - t0) / 1000;
      if (err) failed++;
      if (i >= 0) lat.push(dt);
      if (i + 1 < N) return one(i + 1);
      lat.sort((a, b) => a - b);
      console.log(`js p50_us ${Math.round(lat[N >> 1])} p99_us ${Math.round(lat[Math.floor(N * 0.99)])} calls ${N} failed ${failed}`);
      process.exit(failed ? 1 : 0);
    });
  };
  one(-Math.floor(N / 10));
}
