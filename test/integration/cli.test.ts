/**
 * The command line, run as a user runs it (a child process through tsx):
 * activations and gradients equal the PyTorch fixtures, generate prints the
 * greedy continuation, and bad input exits 1 with one readable line.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'child_process';
import fs from 'fs';
import path from 'path';
import { allHookNames } from '../../src/runtime/hooks';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const MAMBA = 'test/fixtures/tiny-mamba';
const ref = JSON.parse(fs.readFileSync(path.join(ROOT, MAMBA, 'reference.json'), 'utf8'));
const kase = ref.cases[1]; // 7 tokens
const ids = (kase.input_ids as number[]).join(',');

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Out> {
  return new Promise((resolve) => {
    execFile(TSX, ['src/cli/main.ts', ...args], { cwd: ROOT, maxBuffer: 256 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

function maxDiff(a: unknown, b: unknown): number {
  const fa = flat(a);
  const fb = flat(b);
  expect(fa.length).toBe(fb.length);
  return fa.reduce((m, x, i) => Math.max(m, Math.abs(x - fb[i])), 0);
}

const scale = (x: unknown) => Math.max(1, ...flat(x).map(Math.abs));

describe('cli activations', () => {
  it('prints logits and hooks equal to the PyTorch fixture', async () => {
    const r = await cli('activations', '--model', MAMBA, '--ids', ids, '--hooks', 'layers.0.mixer.ssm_out,logits');
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(['logits', 'hooks']);
    expect(Object.keys(out.hooks)).toEqual(['layers.0.mixer.ssm_out', 'logits']);
    expect(out.logits).toHaveLength(7);
    expect(out.logits[0]).toHaveLength(512);
    expect(maxDiff(out.logits, kase.logits)).toBeLessThan(1e-4);
    expect(maxDiff(out.hooks.logits, kase.logits)).toBeLessThan(1e-4);
    expect(out.hooks['layers.0.mixer.ssm_out']).toHaveLength(7);
    expect(maxDiff(out.hooks['layers.0.mixer.ssm_out'], kase.layers[0].ssm_out)).toBeLessThan(1e-4);
  });

  it('--hooks all includes every hook, with values equal to the fixture', async () => {
    const r = await cli('activations', '--model', MAMBA, '--ids', ids, '--hooks', 'all');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const names = allHookNames('mamba', 4);
    expect(Object.keys(out.hooks)).toEqual(names);
    expect(names).toHaveLength(1 + 4 * 15 + 2);
    for (let l = 0; l < 4; l++) {
      for (const [hook, key] of [['mixer.x', 'x_in_proj'], ['mixer.conv', 'conv_out'], ['mixer.dt', 'dt'], ['mixer.out', 'mixer_out']]) {
        expect(maxDiff(out.hooks[`layers.${l}.${hook}`], kase.layers[l][key]), `layers.${l}.${hook}`).toBeLessThan(1e-4);
      }
      // transformers' MambaModel lists each layer's output as hidden_states[l] (the parity test measured it)
      expect(maxDiff(out.hooks[`layers.${l}.resid_post`], kase.hidden_states[l])).toBeLessThan(1e-4);
    }
    expect(maxDiff(out.hooks.norm_f, kase.hidden_states[4])).toBeLessThan(1e-4);
    expect(out.hooks['layers.1.mixer.state']).toHaveLength(7); // [T,E,N]
    expect(out.hooks['layers.1.mixer.state'][0]).toHaveLength(128);
    expect(out.hooks['layers.1.mixer.state'][0][0]).toHaveLength(16);
  });
});

describe('cli grad', () => {
  const g = kase.grad;

  it('--wrt a hook equals the fixture gradient d_loss_d_mixer_out', async () => {
    expect(g.layer).toBe(2);
    const r = await cli('grad', '--model', MAMBA, '--ids', ids, '--wrt', 'layers.2.mixer.out');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Math.abs(out.loss - g.loss_value)).toBeLessThan(1e-4 * g.loss_value);
    expect(out.grad).toHaveLength(7);
    expect(out.grad[0]).toHaveLength(64);
    expect(maxDiff(out.grad, g.d_loss_d_mixer_out) / scale(g.d_loss_d_mixer_out)).toBeLessThan(1e-4);
  });

  it('--wrt a weight equals the fixture gradient d_loss_d_out_proj_weight', async () => {
    const r = await cli('grad', '--model', MAMBA, '--ids', ids, '--wrt', 'layers.2.mixer.out_proj.weight');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.grad).toHaveLength(64); // [D][E], PyTorch layout
    expect(out.grad[0]).toHaveLength(128);
    expect(maxDiff(out.grad, g.d_loss_d_out_proj_weight) / scale(g.d_loss_d_out_proj_weight)).toBeLessThan(1e-4);
  });
});

describe('cli on the adapter-table transformers', () => {
  for (const name of ['tiny-gpt2', 'tiny-qwen3']) {
    const dir = `test/fixtures/${name}`;
    const tf = JSON.parse(fs.readFileSync(path.join(ROOT, dir, 'reference.json'), 'utf8')).cases[1];
    const tfIds = (tf.input_ids as number[]).join(',');

    it(`${name}: TransformerLens and Hugging Face spellings give the fixture's activations`, async () => {
      const r = await cli('activations', '--model', dir, '--ids', tfIds, '--hooks', 'blocks.1.attn.hook_pattern,blocks.2.hook_mlp_out,model.layers.3.ln_2,hook_embed');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(Object.keys(out.hooks)).toEqual(['blocks.1.attn.hook_pattern', 'blocks.2.hook_mlp_out', 'model.layers.3.ln_2', 'hook_embed']);
      expect(maxDiff(out.logits, tf.logits)).toBeLessThan(1e-4);
      expect(maxDiff(out.hooks['blocks.1.attn.hook_pattern'], tf.layers[1].pattern)).toBeLessThan(1e-4);
      expect(maxDiff(out.hooks['blocks.2.hook_mlp_out'], tf.layers[2].mlp_out)).toBeLessThan(1e-4);
      expect(maxDiff(out.hooks['model.layers.3.ln_2'], tf.layers[3].ln2)).toBeLessThan(1e-4);
      expect(maxDiff(out.hooks.hook_embed, tf.embed)).toBeLessThan(1e-4);
    });

    it(`${name}: --wrt the down projection weight equals PyTorch's gradient in [out][in] layout`, async () => {
      const down = name === 'tiny-gpt2' ? 'mlp.c_proj' : 'mlp.down_proj';
      const r = await cli('grad', '--model', dir, '--ids', tfIds, '--wrt', `layers.${tf.grad.layer}.${down}.weight`);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.grad).toHaveLength(64); // [D][F]
      expect(maxDiff(out.grad, tf.grad.d_loss_d_down_weight) / scale(tf.grad.d_loss_d_down_weight)).toBeLessThan(1e-4);
    });
  }
});

describe('cli generate', () => {
  it('prints the greedy continuation on mamba-facts', async () => {
    const r = await cli('generate', '--model', 'data/models/mamba-facts', '--prompt', 'Michael Jordan plays the sport of', '--max-new-tokens', '6');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.prompt).toBe('Michael Jordan plays the sport of');
    expect(out.tokens).toEqual([1686, 15]); // " basketball" "." then <|endoftext|> stops it
    expect(out.text).toBe(' basketball.');
  });
});

describe.concurrent('cli bad input', () => {
  /** Exit code 1, nothing on stdout, and an "error: ..." line naming `what` (a usage block may follow). */
  async function rejects(args: string[], what: RegExp): Promise<string> {
    const r = await cli(...args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    const first = r.stderr.split('\n')[0];
    expect(first).toMatch(/^error: /);
    expect(first).toMatch(what);
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
    return r.stderr;
  }

  it('missing --model', async () => {
    await rejects(['activations', '--ids', '1,2,3'], /--model/);
  });

  it('bad --ids', async () => {
    const err = await rejects(['activations', '--model', MAMBA, '--ids', '1,x,3'], /--ids.*"1,x,3"/);
    expect(err.trim().split('\n')).toHaveLength(1);
    await rejects(['activations', '--model', MAMBA, '--ids', '1,2,9999'], /token id 9999/);
  });

  it('unknown hook, with suggestions', async () => {
    const err = await rejects(['activations', '--model', MAMBA, '--ids', '1,2,3', '--hooks', 'layers.0.mixer.ssm_outt'], /unknown hook "layers\.0\.mixer\.ssm_outt".*"layers\.0\.mixer\.ssm_out"/);
    expect(err.trim().split('\n')).toHaveLength(1);
    await rejects(['grad', '--model', MAMBA, '--ids', '1,2,3', '--wrt', 'layers.2.mixer.nope'], /layers\.2\.mixer\.nope/);
  });

  it('nonexistent model directory', async () => {
    const err = await rejects(['activations', '--model', 'no/such/dir', '--ids', '1,2'], /no\/such\/dir/);
    expect(err.trim().split('\n')).toHaveLength(1);
  });

  it('unknown command', async () => {
    await rejects(['activate', '--model', MAMBA], /unknown command "activate"/);
  });
});
