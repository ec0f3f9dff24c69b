/** Bundles the CLI into dist/ (see build-cli.mjs); resolves with the entry file's path. */
export function buildCli(): Promise<string>;
export const ROOT: string;
export const OUT_DIR: string;
export const MANIFEST: string;
