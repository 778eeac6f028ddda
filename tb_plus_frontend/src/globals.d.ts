// CSS imports are side effects handled by esbuild (emitted as index.css next to index.js).
declare module "*.css";
