import { describe, expect, it } from 'vitest';
import { CacheError } from '../../src/core/errors.js';
import { checkOptions, describeType, describeValue } from '../../src/core/options.js';

function messageOf(run: () => void): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CacheError);
    expect((error as CacheError).errorType).toBe('validation');
    return (error as CacheError).message;
  }
  throw new Error('expected a validation error');
}

describe('describeValue', () => {
  it.each([
    ["'60'", '60', '"60" (a string)'],
    ['60', 60, '60 (a number)'],
    ['-0', -0, '-0 (a number)'],
    ['NaN', NaN, 'NaN (a number)'],
    ['Infinity', Infinity, 'Infinity (a number)'],
    ['10n', 10n, '10n (a bigint)'],
    ['true', true, 'true (a boolean)'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ["Symbol('secret')", Symbol('secret'), 'a symbol'],
    ['[1, 2]', [1, 2], 'an array'],
    ['{ a: 1 }', { a: 1 }, 'an object'],
    ['Object.create(null)', Object.create(null), 'an object'],
    ['new Map()', new Map(), 'an instance of Map'],
    ['new Date(0)', new Date(0), 'an instance of Date'],
  ])('describeValue(%s)', (_label, value, expected) => {
    expect(describeValue(value)).toBe(expected);
  });

  it('names a function by its name', () => {
    function load(): void {}
    expect(describeValue(load)).toBe('a function (load)');
    expect(describeValue(() => 1)).toBe('a function');
  });

  it('cuts long strings and says how long they were', () => {
    expect(describeValue('k'.repeat(2049))).toBe(`"${'k'.repeat(40)}…" (a string of 2049 characters)`);
  });

  it('describeType never shows the value itself', () => {
    expect(describeType('hunter2')).toBe('a string');
    expect(describeType(12345)).toBe('a number');
    expect(describeType(null)).toBe('null');
    expect(describeType(new Set())).toBe('an instance of Set');
  });
});

describe('checkOptions', () => {
  const SET = ['ttl', 'tenantId'] as const;

  it('passes undefined, an empty object and known options, whatever their values', () => {
    expect(() => checkOptions('set', undefined, SET)).not.toThrow();
    expect(() => checkOptions('set', {}, SET)).not.toThrow();
    expect(() => checkOptions('set', { ttl: 'anything', tenantId: undefined }, SET)).not.toThrow();
    expect(() => checkOptions('set', Object.assign(Object.create(null), { ttl: 1 }), SET)).not.toThrow();
  });

  it('names the option probably meant: another case, a typo, a part of it', () => {
    expect(messageOf(() => checkOptions('createMemoryCache', { defaultTTL: 1 }, ['defaultTtl', 'maxSize', 'maxBytes', 'byReference']))).toBe(
      'createMemoryCache: unknown option "defaultTTL" (did you mean "defaultTtl"?)',
    );
    expect(messageOf(() => checkOptions('set', { TTL: 5 }, SET))).toBe('set: unknown option "TTL" (did you mean "ttl"?)');
    expect(messageOf(() => checkOptions('get', { tenantID: 'a' }, ['tenantId']))).toBe('get: unknown option "tenantID" (did you mean "tenantId"?)');
    expect(messageOf(() => checkOptions('set', { tll: 5 }, SET))).toBe('set: unknown option "tll" (did you mean "ttl"?)');
    expect(messageOf(() => checkOptions('set', { tenant: 'a' }, SET))).toBe('set: unknown option "tenant" (did you mean "tenantId"?)');
    expect(messageOf(() => checkOptions('x', { timeout: 1 }, ['connectTimeout', 'commandTimeout']))).toBe(
      'x: unknown option "timeout" (did you mean one of "connectTimeout", "commandTimeout"?)',
    );
  });

  it('lists the known options when none is close', () => {
    expect(messageOf(() => checkOptions('set', { expires: 5 }, SET))).toBe('set: unknown option "expires" (known options: ttl, tenantId)');
    expect(messageOf(() => checkOptions('validate', { a: 1 }, []))).toBe('validate: unknown option "a" (this takes no options)');
  });

  it('refuses an unknown option even when its value is undefined, and inherited enumerable ones', () => {
    expect(messageOf(() => checkOptions('set', { TTL: undefined }, SET))).toContain('unknown option "TTL"');
    const inherited = Object.create({ tenantID: 'a' }) as object;
    expect(messageOf(() => checkOptions('set', inherited, SET))).toContain('unknown option "tenantID"');
  });

  it('refuses options that are not an object, showing the object form', () => {
    expect(messageOf(() => checkOptions('set', 300, SET))).toBe('set: options must be an object such as { ttl: 300 }, got 300 (a number)');
    expect(messageOf(() => checkOptions('get', 'acme', ['tenantId']))).toBe('get: options must be an object such as { tenantId: "acme" }, got "acme" (a string)');
    expect(messageOf(() => checkOptions('get', null, ['tenantId']))).toBe('get: options must be an object such as { tenantId }, got null');
    expect(messageOf(() => checkOptions('get', [1], ['tenantId']))).toBe('get: options must be an object such as { tenantId }, got an array');
  });
});
