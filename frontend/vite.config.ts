/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the editor with hot reload and forwards /api and /socket.io to a running
// `torchloom serve` (TORCHLOOM_API, default http://127.0.0.1:5000), adding the server's token
// (TORCHLOOM_TOKEN) to each forwarded request, so the dev page needs no login.
const api = process.env.TORCHLOOM_API ?? "http://127.0.0.1:5000";
const token = process.env.TORCHLOOM_TOKEN ?? "";
// requests are forwarded as the API's own origin (the server refuses foreign origins)
const forward = {
  target: api,
  changeOrigin: true,
  headers: { Origin: api, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
};

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 900,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      "/api": forward,
      "/socket.io": { ...forward, ws: true },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
    // some tests ask the server's Python (torch import included) for the reference answer
    testTimeout: 60_000,
  },
});
