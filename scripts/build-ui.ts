import { buildAssets, DIST_DIR } from '../ui/server/assets';

/** `npm run build:ui`: bundles the dashboard into ui/dist, for a copy of runctl without esbuild. */
const assets = await buildAssets({ outdir: DIST_DIR });
for (const [path, asset] of assets) console.log(`${path.padEnd(20)} ${(asset.body.length / 1024).toFixed(1).padStart(7)} KiB`);
console.log(`written to ${DIST_DIR}`);
