// The node API's door, tried with credentials that must not open it:
//   node session.js FOREIGN_CERT FOREIGN_KEY [JOIN_TOKEN CSR_FOR_OTHER_CN]
// 1. a Session with a client certificate from another CA fails the TLS
//    handshake (UNAVAILABLE), so it never reaches the controller;
// 2. a Join whose CSR names another node than node_name is PERMISSION_DENIED
//    (an agent cannot get a certificate for someone else's name).
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const def = loader.loadSync(['hsp/v1/node.proto'], {
  includeDirs: [path.join(__dirname, '..', '..', 'proto')], keepCase: true, defaults: true,
});
const hsp = grpc.loadPackageDefinition(def).hsp.v1;
const [cert, key, joinToken, csr] = process.argv.slice(2);
const ca = fs.readFileSync(process.env.HSP_CA);
const target = process.env.HSP_CONTROLLER;

function session() {
  const creds = grpc.credentials.createSsl(ca, fs.readFileSync(key), fs.readFileSync(cert));
  const c = new hsp.NodeAgent(target, creds);
  return new Promise((resolve) => {
    const s = c.Session({deadline: Date.now() + 10000});
    s.on('data', () => resolve({code: -1}));
    s.on('error', (e) => resolve(e));
    s.write({hello: {agent_version: 'foreign'}});
  });
}

function join() {
  const c = new hsp.NodeAgent(target, grpc.credentials.createSsl(ca));
  return new Promise((resolve) => {
    c.Join({token: joinToken, node_name: 'claimant', csr_pem: fs.readFileSync(csr),
      capacity: {cpus: 1, memory_bytes: 1 << 30}}, (err) => resolve(err || {code: 0}));
  });
}

(async () => {
  const s = await session();
  if (s.code !== grpc.status.UNAVAILABLE) {
    console.error(`not ok - foreign certificate: status ${s.code} (${s.details})`);
    process.exit(1);
  }
  console.log(`ok - foreign certificate refused: ${s.details}`);
  if (joinToken) {
    const j = await join();
    if (j.code !== grpc.status.PERMISSION_DENIED) {
      console.error(`not ok - CSR for another name: status ${j.code} (${j.details})`);
      process.exit(1);
    }
    console.log(`ok - CSR for another name refused: ${j.details}`);
  }
})();
