import { defineConfig } from "vite";

// `npm run dev` proxies the API to a server on 127.0.0.1:8080; the build in
// dist/ is what the server itself serves at `/`.
export default defineConfig({
  build: { outDir: "dist", target: "es2022", assetsInlineLimit: 0 },
  server: {
    proxy: {
      "/v1": "http://127.0.0.1:8080",
    },
  },
});
