// Regenerates docs/hooks.md from the hook vocabulary (npm run docs).
import fs from 'fs';
import path from 'path';
import { hookTableMarkdown } from '../src/runtime/hook-table';

fs.writeFileSync(path.join(__dirname, '..', 'docs', 'hooks.md'), hookTableMarkdown());
