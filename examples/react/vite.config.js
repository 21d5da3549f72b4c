import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The sample photo lives in the segmentkit repository (core/segmentkit/samples): let the
// dev server read it; the build copies it into dist/assets like any imported asset.
export default defineConfig({
  plugins: [react()],
  server: { host: "127.0.0.1", fs: { allow: ["../.."] } },
});
