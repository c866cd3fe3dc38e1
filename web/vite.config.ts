import { defineConfig } from "vite";

// Relative asset URLs: the same build is served at / (CloudFront) and at /ui/ (`storyflow local up`).
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // One small bundle; no inline scripts or styles, so the CSP needs no 'unsafe-inline'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
