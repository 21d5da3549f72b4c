export * from "./element.js";
export * from "./client.js";
export * from "./codecs.js";
