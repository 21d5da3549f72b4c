// @custom-elements-manifest/analyzer: the element's manifest, custom-elements.json, from its JSDoc.
// package.json already names the manifest ("customElements"): the analyzer must not rewrite it.
export default {
  globs: ["src/element/*.js"],
  outdir: ".",
  packagejson: false,
};
