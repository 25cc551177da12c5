// A minimal Jupyter kernel-protocol client for tests: starts our tslab kernel (kernel-config/tslab-kernel.js)
// on loopback ports with a signed connection file, sends execute requests on the shell channel and
// collects iopub messages, all without a Jupyter server. It uses the zeromq that tslab itself depends on.
import { ChildProcess, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import { createRequire } from 'module';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const zmq: any = createRequire(require.resolve('tslab/package.json', { paths: [ROOT] }))('zeromq');
const DELIM = '<IDS|MSG>';

export interface Message {
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  /** ms since the client started. */
  at: number;
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export class KernelClient {
  readonly iopub: Message[] = [];
  private readonly replies = new Map<string, (m: Message) => void>();
  private readonly t0 = Date.now();

  private constructor(readonly proc: ChildProcess, private readonly key: string, private readonly shell: any, private readonly sub: any) {}

  /** Starts the kernel in `cwd` (the notebook folder) and waits until it answers a kernel_info request. */
  static async start(cwd: string): Promise<KernelClient> {
    const [shell, iopub, stdin, control, hb] = await freePorts(5);
    const key = crypto.randomBytes(16).toString('hex');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-kernel-')), 'connection.json');
    fs.writeFileSync(file, JSON.stringify({
      shell_port: shell, iopub_port: iopub, stdin_port: stdin, control_port: control, hb_port: hb,
      ip: '127.0.0.1', key, transport: 'tcp', signature_scheme: 'hmac-sha256', kernel_name: 'tslab',
    }));
    const proc = spawn(process.execPath, [path.join(ROOT, 'kernel-config/tslab-kernel.js'), 'kernel', '--config-path', file], {
      cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FACTLENS_ROOT: ROOT },
    });
    const dealer = new zmq.Dealer();
    dealer.connect(`tcp://127.0.0.1:${shell}`);
    const sub = new zmq.Subscriber();
    sub.connect(`tcp://127.0.0.1:${iopub}`);
    sub.subscribe();
    const client = new KernelClient(proc, key, dealer, sub);
    client.listen();
    await client.request('kernel_info_request', {}, 60_000);
    return client;
  }

  private sign(parts: string[]): string {
    const h = crypto.createHmac('sha256', this.key);
    for (const p of parts) h.update(p);
    return h.digest('hex');
  }

  private parse(frames: Buffer[]): Message {
    const i = frames.findIndex((f) => f.toString() === DELIM);
    const [header, parent, , content] = frames.slice(i + 2, i + 6).map((f) => JSON.parse(f.toString()));
    return { header, parent_header: parent, content, at: Date.now() - this.t0 };
  }

  private listen(): void {
    void (async () => {
      for await (const frames of this.shell) {
        const m = this.parse(frames as Buffer[]);
        this.replies.get(m.parent_header.msg_id ?? '')?.(m);
      }
    })().catch(() => {});
    void (async () => {
      for await (const frames of this.sub) this.iopub.push(this.parse(frames as Buffer[]));
    })().catch(() => {});
  }

  /** Sends a shell request; resolves with its reply (msg_id available at once as `sent`). */
  send(msgType: string, content: object): { sent: string; reply: Promise<Message> } {
    const msgId = crypto.randomUUID();
    const header = JSON.stringify({ msg_id: msgId, msg_type: msgType, session: 'test', username: 'test', date: new Date().toISOString(), version: '5.3' });
    const parts = [header, '{}', '{}', JSON.stringify(content)];
    const reply = new Promise<Message>((resolve) => this.replies.set(msgId, resolve));
    void this.shell.send([DELIM, this.sign(parts), ...parts]);
    return { sent: msgId, reply };
  }

  async request(msgType: string, content: object, timeoutMs: number): Promise<Message> {
    const { reply } = this.send(msgType, content);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${msgType} reply within ${timeoutMs} ms`)), timeoutMs)));
    try {
      return await Promise.race([reply, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  execute(code: string): { sent: string; reply: Promise<Message> } {
    return this.send('execute_request', { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true });
  }

  /** iopub messages of one request. */
  outputsOf(msgId: string): Message[] {
    return this.iopub.filter((m) => m.parent_header.msg_id === msgId);
  }

  /** CPU seconds (user + system) the kernel process has used so far (Linux /proc). */
  cpuSeconds(): number {
    const fields = fs.readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  }

  async stop(): Promise<void> {
    this.shell.close();
    this.sub.close();
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGKILL');
      await exited;
    }
  }
}
