// The OpenAI wire-format server lives with the examples, which run it offline; tests reuse it.
export { startOpenAIWireServer, type WireEndpoint, type WireServer, type WireServerOptions } from '../../examples/support/openai-wire-server.js';
