// Kernel → Interrupt, through the Jupyter kernel protocol (what JupyterLab does: SIGINT to the kernel
// process): a cell looping over library calls with a progress bar is interrupted; the cell must fail
// with the library's one-line "interrupted" within seconds, the kernel must stop computing, and the
// next cell must run clean, with none of the stopped cell's output in it.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelClient, Message } from '../support/kernel-client';

const ROOT = path.resolve(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(msgs: Message[]): string {
  return msgs.map((m) => {
    const c = m.content as { text?: string; data?: Record<string, unknown>; ename?: string; evalue?: string };
    return (c.text ?? '') + (c.data ? String(c.data['text/plain'] ?? '') : '') + (c.ename ? `${c.ename}: ${c.evalue}` : '');
  }).join('\n');
}

let kernel: KernelClient | undefined;
afterAll(async () => { await kernel?.stop(); });

describe('Kernel → Interrupt', () => {
  it('stops a running library loop with one line, frees the CPU, and the next cell runs clean', async () => {
    kernel = await KernelClient.start(path.join(ROOT, 'notebooks'));
    const setup = await kernel.execute([
      "import { Model, knownFacts, loadRelations } from '../src';",
      "import { progress } from '../src/viz';",
      "const model = await Model.load('../data/models/mamba-facts');",
      "const relations = loadRelations();",
    ].join('\n')).reply;
    expect(setup.content.status, text(kernel.outputsOf(setup.parent_header.msg_id!))).toBe('ok');

    // Many short library calls in a loop: each starts after the interrupt too, so only stopping the cell's work ends it.
    const long = kernel.execute([
      "const bar = progress(1000, 'known-facts loop');",
      "for (let i = 0; i < 1000; i++) { await knownFacts(model, relations, { limit: 4 }); bar.tick(); }",
    ].join('\n'));
    // Wait until the loop is visibly running (its bar has updated at least once).
    for (let i = 0; i < 600 && !kernel.outputsOf(long.sent).some((m) => m.header.msg_type === 'update_display_data'); i++) await sleep(100);
    expect(kernel.outputsOf(long.sent).some((m) => m.header.msg_type === 'update_display_data')).toBe(true);

    const tInt = Date.now();
    kernel.proc.kill('SIGINT');
    const reply = await Promise.race([long.reply, sleep(8000).then(() => null)]);
    const stopSeconds = (Date.now() - tInt) / 1000;
    expect(reply, 'no execute_reply within 8 s of SIGINT').not.toBeNull();
    expect(reply!.content.status).toBe('error');
    const out = text(kernel.outputsOf(long.sent));
    expect(out).toContain('InterruptedError: interrupted (Kernel → Interrupt)');
    expect(out).not.toMatch(/\n\s+at /); // one line, no stack
    expect(out).not.toContain('did not stop within');

    // The kernel stops computing: under 0.3 CPU-seconds in the next 1.5 s.
    const cpu0 = kernel.cpuSeconds();
    await sleep(1500);
    const idleCpu = kernel.cpuSeconds() - cpu0;
    console.log(`interrupt: cell failed ${stopSeconds.toFixed(2)} s after SIGINT; kernel CPU afterwards ${idleCpu.toFixed(2)} s in 1.5 s`);
    expect(idleCpu).toBeLessThan(0.3);

    // The model is usable, and the next cell sees nothing of the stopped one.
    const next = kernel.execute("const ids = model.encode('The Eiffel Tower is located in the city of');\nconsole.log('top:', model.tokenStrings([Array.from((await model.logits([ids], { last: true })).data).reduce((b, v, i, a) => (v > a[b] ? i : b), 0)])[0]);");
    const nextReply = await next.reply;
    await sleep(500);
    const nextOut = text(kernel.outputsOf(next.sent));
    expect(nextReply.content.status, nextOut).toBe('ok');
    expect(nextOut).toMatch(/top: +\S/);
    expect(nextOut).not.toContain('known-facts loop');
    expect(fs.existsSync(`/proc/${kernel.proc.pid}`)).toBe(true);
  }, 180_000);

  it('a progress bar updates the cell that opened it, not the cell running when it ticks', async () => {
    kernel ??= await KernelClient.start(path.join(ROOT, 'notebooks'));
    const open = await kernel.execute("import { progress as bar } from '../src/viz';\nconst late = bar(2, 'bar of cell A');").reply;
    const tick = await kernel.execute("late.tick(); late.done();\nconsole.log('cell B ran');").reply;
    await sleep(500);
    const inB = text(kernel.outputsOf(tick.parent_header.msg_id!));
    expect(tick.content.status, inB).toBe('ok');
    expect(inB).toContain('cell B ran');
    expect(inB).not.toContain('bar of cell A');
    const inA = kernel.outputsOf(open.parent_header.msg_id!).filter((m) => m.header.msg_type === 'update_display_data');
    expect(text(inA)).toContain('bar of cell A 2/2');
  }, 120_000);
});
