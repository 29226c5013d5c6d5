// Filled in by build.mjs when it bundles the service worker (esbuild `define`).
declare const RELAY_SHELL: string[];
declare const RELAY_VERSION: string;
