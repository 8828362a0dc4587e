// pusher-js style event binding: bind/unbind per event name, bind_global for everything.

export class Dispatcher {
  constructor() {
    this.callbacks = new Map(); // event -> [{fn, context}]
    this.globals = [];
  }

  bind(event, fn, context) {
    if (!this.callbacks.has(event)) this.callbacks.set(event, []);
    this.callbacks.get(event).push({ fn, context });
    return this;
  }

  /** unbind(event, fn) removes one callback; unbind(event) all of an event; unbind() all. */
  unbind(event, fn, context) {
    if (event === undefined) {
      this.callbacks.clear();
      return this;
    }
    const list = this.callbacks.get(event) || [];
    const kept = list.filter((c) => (fn && c.fn !== fn) || (context && c.context !== context));
    if (kept.length) this.callbacks.set(event, kept);
    else this.callbacks.delete(event);
    return this;
  }

  bind_global(fn) {
    this.globals.push(fn);
    return this;
  }

  unbind_global(fn) {
    this.globals = fn ? this.globals.filter((g) => g !== fn) : [];
    return this;
  }

  unbind_all() {
    this.unbind();
    return this.unbind_global();
  }

  emit(event, data, metadata) {
    for (const fn of [...this.globals]) safely(() => fn(event, data, metadata));
    for (const { fn, context } of [...(this.callbacks.get(event) || [])]) {
      safely(() => fn.call(context || globalThis, data, metadata));
    }
    return this;
  }
}

// One customer callback throwing must not stop the others (or our own bookkeeping).
function safely(call) {
  try {
    call();
  } catch (err) {
    setTimeout(() => { throw err; }); // still reported, in its own task
  }
}
