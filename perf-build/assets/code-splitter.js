// CodeSplitter: loads modules and features on demand (placeholder until the runtime lands).
export const CodeSplitter = {};
