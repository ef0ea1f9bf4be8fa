// Interop: an independent gRPC implementation (grpc-js) that knows hsp only
// through proto/ drives a live cluster: create, list, exec, destroy, watch,
// and the node API's front door.  Run inside the controller's namespace with
// the sim cluster's env (HSP_CONTROLLER, HSP_TOKEN, HSP_CA); prints one
// "ok - ..." line per check and exits non-zero on the first failure.
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const protoDir = path.join(__dirname, '..', '..', 'proto');
const def = loader.loadSync(['hsp/v1/hsp.proto', 'hsp/v1/node.proto'], {
  includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true,
});
const hsp = grpc.loadPackageDefinition(def).hsp.v1;

const target = process.env.HSP_CONTROLLER;
const token = process.env.HSP_TOKEN;
const ca = fs.readFileSync(process.env.HSP_CA);
const creds = grpc.credentials.createSsl(ca);
const opts = {'grpc.max_send_message_length': 64 << 20};
const ve = 'interop-' + process.pid;

function md(tok) {
  const m = new grpc.Metadata();
  if (tok) m.set('authorization', 'Bearer ' + tok);
  return m;
}

function unary(client, method, req, tok = token) {
  return new Promise((resolve, reject) => {
    client[method](req, md(tok), {deadline: Date.now() + 30000}, (err, resp) =>
      err ? reject(err) : resolve(resp));
  });
}

async function expectCode(p, code, what) {
  try {
    await p;
  } catch (e) {
    if (e.code !== code)
      throw new Error(`${what}: want status ${code}, got ${e.code} (${e.details})`);
    console.log(`ok - ${what}: ${grpc.status[code]} (${e.details})`);
    return;
  }
  throw new Error(`${what}: succeeded, want status ${code}`);
}

function check(cond, what) {
  if (!cond) throw new Error(what);
  console.log('ok - ' + what);
}

function exec(client, argv, stdin = Buffer.alloc(0)) {
  return new Promise((resolve, reject) => {
    const out = {stdout: '', stderr: '', code: null};
    const call = client.Exec({name: ve, argv, stdin}, md(token));
    call.on('data', (m) => {
      if (m.stream === 'STREAM_STDOUT') out.stdout += m.data.toString();
      if (m.stream === 'STREAM_STDERR') out.stderr += m.data.toString();
      if (m.exited) out.code = m.exit_code;
    });
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}

async function main() {
  const ves = new hsp.Ves(target, creds, opts);
  const ops = new hsp.Operations(target, creds);
  const events = new hsp.Events(target, creds);
  const node = new hsp.NodeAgent(target, creds);

  const seen = [];
  const watch = events.Watch({ve}, md(token));
  watch.on('data', (e) => seen.push(`${e.kind}:${e.state}`));
  watch.on('error', () => {});
  await new Promise((r) => setTimeout(r, 200));

  const op = await unary(ves, 'Create', {name: ve, template: 'busybox', start: true,
    limits: {memory_bytes: String(64 << 20)}});
  check(op.id.startsWith('op-') && op.kind === 've.create', 'Create returns an operation');
  const done = await unary(ops, 'Wait', {id: op.id, timeout_seconds: 60});
  check(done.state === 'OPERATION_STATE_DONE', `create operation done (${done.message})`);

  const list = await unary(ves, 'List', {});
  const mine = list.ves.find((v) => v.name === ve);
  check(mine && mine.state === 'VE_STATE_RUNNING', 'List shows the VE running');

  const r1 = await exec(ves, ['sh', '-c', 'echo hello; echo oops >&2; exit 7']);
  check(r1.stdout === 'hello\n' && r1.stderr === 'oops\n' && r1.code === 7,
    `Exec streams stdout, stderr and the exit code (${JSON.stringify(r1)})`);
  const r2 = await exec(ves, ['cat'], Buffer.from('from stdin'));
  check(r2.stdout === 'from stdin' && r2.code === 0, 'Exec passes stdin');

  await expectCode(unary(ves, 'Get', {name: ve}, ''), grpc.status.UNAUTHENTICATED,
    'no token');
  await expectCode(unary(ves, 'Get', {name: ve}, 'hspt.0000.1111'),
    grpc.status.UNAUTHENTICATED, 'a made-up token');
  await expectCode(unary(ves, 'Create', {name: 'Bad_Name', template: 'busybox'}),
    grpc.status.INVALID_ARGUMENT, 'an invalid VE name');
  await expectCode(unary(ves, 'Create', {name: 'keyed', template: 'busybox',
    ssh_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\nssh-rsa AAAAB3NzaC1yc2E']}),
    grpc.status.INVALID_ARGUMENT, 'an ssh key with a line break');
  await expectCode(unary(ves, 'Create', {name: 'keyed', template: 'busybox',
    limits: {memory_bytes: '1024'}}), grpc.status.INVALID_ARGUMENT, 'a 1 KiB memory limit');
  await expectCode(exec(ves, ['cat'], Buffer.alloc(5 << 20)),
    grpc.status.RESOURCE_EXHAUSTED, 'a 5 MiB request');
  const tokens = new hsp.Tokens(target, creds);
  await expectCode(unary(tokens, 'Create', {kind: 99}), grpc.status.INVALID_ARGUMENT,
    'an unknown enum value');
  await expectCode(unary(node, 'Join', {token: 'hspj.x.y.z', node_name: 'evil',
    csr_pem: Buffer.from('x'), capacity: {cpus: 1, memory_bytes: '1000000'}}),
    grpc.status.UNAUTHENTICATED, 'Join with a made-up token');
  await expectCode(new Promise((resolve, reject) => {
    const s = node.Session();
    s.on('error', reject);
    s.on('end', resolve);
    s.on('data', () => {});
    s.write({hello: {agent_version: 'evil'}});
  }), grpc.status.UNAUTHENTICATED, 'Session without a node certificate');

  const dop = await unary(ves, 'Destroy', {name: ve});
  const ddone = await unary(ops, 'Wait', {id: dop.id, timeout_seconds: 60});
  check(ddone.state === 'OPERATION_STATE_DONE', 'destroy operation done');
  await expectCode(unary(ves, 'Get', {name: ve}), grpc.status.NOT_FOUND, 'the VE is gone');

  await new Promise((r) => setTimeout(r, 300));
  watch.cancel();
  check(seen.includes('ve.state:running') && seen.includes('ve.state:destroyed'),
    `Watch streamed the VE's states (${seen.join(' ')})`);
}

main().then(() => process.exit(0), (e) => {
  console.error('not ok - ' + e.message);
  process.exit(1);
});
