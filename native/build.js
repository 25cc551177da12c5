// Builds the optional native selective scan (native/scan.cc) with node-gyp; run by `npm install`.
// Without a C++ toolchain the build fails, a note is printed, and Mamba falls back to the ONNX
// Scan (same results, slower). Never fails the install.
const { spawnSync } = require('child_process');
const path = require('path');

const gyp = process.env.npm_config_node_gyp || 'node-gyp';
const args = [gyp, 'rebuild', '--directory', __dirname];
const run = gyp.endsWith('.js') ? spawnSync(process.execPath, args, { stdio: 'inherit' }) : spawnSync(args[0], args.slice(1), { stdio: 'inherit', shell: true });
if (run.status !== 0) {
  console.warn('\nfactlens: the native selective scan was not built (needs python3, make and a C++ compiler);');
  console.warn('Mamba models will use the ONNX Scan instead: the same numbers, slower. Rebuild with `npm run build-native`.\n');
} else {
  console.log(`factlens: built ${path.join(__dirname, 'build', 'Release', 'factlens_scan.node')}`);
}
