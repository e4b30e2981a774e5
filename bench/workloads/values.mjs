// The values every workload stores: a small record and a ~2 KB chat completion.

export const smallObject = { id: 48213, name: 'Ada Lovelace', active: true };

const content =
  'Caching an LLM answer is worth it when the same question comes back: support bots, RAG over a stable corpus, ' +
  'evaluation suites that replay the same prompts. The key must hold everything that changes the answer (model, ' +
  'messages, tools, temperature) and nothing that does not (request ids, user ids when answers are not personal). ';

/** An OpenAI-shaped chat completion whose JSON is about 2 KB. */
export function chatCompletion(seed = 0) {
  const body = (content.repeat(6) + ` #${seed}`).slice(0, 1750);
  return {
    id: `chatcmpl-${String(seed).padStart(8, '0')}AbCdEfGh`,
    object: 'chat.completion',
    created: 1764201600,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: body, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 412, completion_tokens: 377, total_tokens: 789 },
    system_fingerprint: 'fp_0ba0d124f1',
  };
}

export const twoKb = chatCompletion(1);
