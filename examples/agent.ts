// Task-result memoization for an agent (the guide's `task:{task_id}` ->
// `agent.execute_task(task)`), plus a tool method cached with @Cached. Offline:
// the agent and its tool sleep like real ones. Set REDIS_URL to cache on
// Dragonfly/Redis, where identical tasks run once across every process.
import { type Cache, Cached, cacheStats, memoizeTask, taskMetadata } from '../src/index.js';
import { openCache, timed } from './support/demo.js';

interface Task {
  id: string;
  goal: string;
}

class Agent {
  runs = 0;
  constructor(
    readonly agentId: string,
    readonly cache: Cache,
  ) {}

  /** A tool the agent calls: cached per argument, in the agent's own cache (`this.cache`). */
  @Cached({ ttl: 300 })
  async searchDocs(query: string): Promise<string[]> {
    await new Promise((resolve) => setTimeout(resolve, 150));
    return [`doc about ${query}`, `another doc about ${query}`];
  }

  async executeTask(task: Task): Promise<{ taskId: string; output: string }> {
    this.runs++;
    const docs = await this.searchDocs(task.goal);
    await new Promise((resolve) => setTimeout(resolve, 350));
    return { taskId: task.id, output: `${task.goal}: summarized ${docs.length} documents` };
  }
}

async function main(): Promise<void> {
  const cache = await openCache('example-agent');
  const agent = new Agent('agent_001', cache);
  // Keyed by task id; bump `version` when executeTask changes and old results are never returned.
  const executeTask = memoizeTask((task: Task) => agent.executeTask(task), {
    cache,
    ttl: 600,
    key: (task) => task.id,
    version: 1,
    namespace: 'task:agent_001.executeTask',
    lockTtl: 30,
  });
  console.log(`cache: ${cache.kind}\n`);

  const task = { id: 'task-42', goal: 'summarize the Q3 report' };
  await timed('miss: executeTask(task-42)', () => executeTask(task));
  const hit = await timed('hit:  executeTask(task-42)', () => executeTask(task));
  console.log(`result: ${JSON.stringify(hit)}`);
  const meta = await taskMetadata(executeTask, task);
  console.log(`metadata: stored ${new Date(meta!.storedAt).toISOString()}, the task took ${meta!.durationMs.toFixed(0)} ms\n`);

  const other = { id: 'task-43', goal: 'summarize the Q3 report' };
  await timed('3 concurrent calls of task-43 (one run)', () => Promise.all([executeTask(other), executeTask(other), executeTask(other)]));
  console.log(`the task body ran ${agent.runs} times for 5 calls`);
  console.log(`(task-43's tool call hit: searchDocs was cached by @Cached from task-42's run)\n`);

  const taskStats = cacheStats(executeTask);
  const toolStats = cacheStats(Agent.prototype.searchDocs);
  console.log('memoizeTask stats:', { ...taskStats, latencySavedMs: Math.round(taskStats.latencySavedMs) });
  console.log('@Cached searchDocs stats:', { ...toolStats, latencySavedMs: Math.round(toolStats.latencySavedMs) });
  await cache.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
