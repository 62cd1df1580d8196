/**
 * `instanceof` that holds across copies of ddmq. The package ships an ES module build and
 * a CommonJS build; a program that loads both (its own code imports ddmq, a dependency
 * requires it) has two DdmqError classes, and an error thrown by one copy would fail
 * `instanceof` with the other. A class marked here carries a registered symbol (the same
 * in every copy) on its prototype, and its `instanceof` tests for that symbol.
 */
export function brand(cls: abstract new (...args: never[]) => unknown, name: string): void {
  const key = Symbol.for(`ddmq.${name}`);
  Object.defineProperty(cls.prototype, key, { value: true });
  Object.defineProperty(cls, Symbol.hasInstance, {
    value(this: unknown, value: unknown): boolean {
      // Only the marked class itself: a subclass keeps the ordinary prototype test.
      if (this !== cls) return Function.prototype[Symbol.hasInstance].call(this, value);
      return (typeof value === 'object' || typeof value === 'function') && value !== null && (value as Record<symbol, unknown>)[key] === true;
    },
  });
}
