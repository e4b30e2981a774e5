import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../../src/backends/deadlines.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const never = () => new Promise<never>(() => {});

describe('Deadlines (one timer for every command of a Dragonfly cache)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a command that never answers rejects with "Command timed out" once its budget is spent, not before', async () => {
    const deadlines = new Deadlines(500);
    const outcome = vi.fn();
    deadlines.bound(never()).catch((error: Error) => outcome(error.message));
    await vi.advanceTimersByTimeAsync(499);
    expect(outcome).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toHaveBeenCalledWith('Command timed out');
  });

  it('each command gets its full budget from when it was issued, whatever was issued before it', async () => {
    const deadlines = new Deadlines(500);
    const timedOut: string[] = [];
    deadlines.bound(never()).catch(() => timedOut.push('first'));
    await vi.advanceTimersByTimeAsync(300);
    deadlines.bound(never()).catch(() => timedOut.push('second'));
    await vi.advanceTimersByTimeAsync(200);
    expect(timedOut).toEqual(['first']);
    await vi.advanceTimersByTimeAsync(299);
    expect(timedOut).toEqual(['first']);
    await vi.advanceTimersByTimeAsync(1);
    expect(timedOut).toEqual(['first', 'second']);
  });

  it('answers and errors in time pass through; an answer after the deadline changes nothing', async () => {
    const deadlines = new Deadlines(500);
    await expect(deadlines.bound(Promise.resolve('value'))).resolves.toBe('value');
    await expect(deadlines.bound(Promise.reject(new Error('WRONGTYPE')))).rejects.toThrow('WRONGTYPE');
    let answer!: (value: string) => void;
    const late = deadlines.bound(new Promise<string>((resolve) => (answer = resolve)));
    const settled = late.catch((error: Error) => error.message);
    await vi.advanceTimersByTimeAsync(500);
    answer('too late');
    expect(await settled).toBe('Command timed out');
  });

  it('a command issued after everything settled is still bounded (the queue was emptied, the timer re-armed)', async () => {
    const deadlines = new Deadlines(500);
    await deadlines.bound(Promise.resolve(1));
    await vi.advanceTimersByTimeAsync(10_000);
    const outcome = vi.fn();
    deadlines.bound(never()).catch(outcome);
    await vi.advanceTimersByTimeAsync(500);
    expect(outcome).toHaveBeenCalledOnce();
  });

  it('a thousand pending commands share one timer', () => {
    const deadlines = new Deadlines(500);
    for (let i = 0; i < 1000; i++) deadlines.bound(never()).catch(() => {});
    expect(vi.getTimerCount()).toBe(1);
  });
});

describe('Deadlines with real timers', () => {
  it('the timer alone never keeps the process alive (pending commands hold the connection already)', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    new Deadlines(60_000).bound(never()).catch(() => {});
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
  });
});

describe('Deadlines under steady load', () => {
  it('an answered command is let go at once while later commands are still in flight, not kept until the timer fires', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const deadlines = new Deadlines(60_000);
    // The caller keeps nothing of the answered command: only the deadlines' queue could hold its answer.
    const answeredWith = async (): Promise<WeakRef<object>> => {
      const value = { payload: 'x'.repeat(1000) };
      await deadlines.bound(Promise.resolve(value));
      return new WeakRef(value);
    };
    // Issued before a command that stays in flight, answered first: the order replies come in.
    const answering = answeredWith();
    deadlines.bound(never()).catch(() => {});
    const answered = await answering;
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(answered.deref()).toBeUndefined();
  });
});
