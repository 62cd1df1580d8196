// A discrete-event simulation of a farm of H hosts × W workers draining one ddmq queue on a
// shared file system. It follows ddmq's own consume path (src/store/queue.ts consumeNow,
// cursor.ts, claims.ts, settle.ts, watch.ts); see sim/README.md for what is modelled and how.
// Pure and deterministic: the same configuration and seed give the same result.

/** A seeded random number generator (mulberry32): numbers in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Events in time order (ties in the order they were scheduled). */
class EventQueue {
  constructor() {
    this.t = [];
    this.s = [];
    this.f = [];
    this.seq = 0;
  }
  get size() {
    return this.t.length;
  }
  push(time, fn) {
    const t = this.t, s = this.s, f = this.f;
    let i = t.length;
    const seq = this.seq++;
    t.push(time);
    s.push(seq);
    f.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (t[p] < time || (t[p] === time && s[p] < seq)) break;
      t[i] = t[p]; s[i] = s[p]; f[i] = f[p];
      i = p;
    }
    t[i] = time; s[i] = seq; f[i] = fn;
  }
  pop() {
    const t = this.t, s = this.s, f = this.f;
    const time = t[0], fn = f[0];
    const lt = t.pop(), ls = s.pop(), lf = f.pop();
    const n = t.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (t[r] < t[l] || (t[r] === t[l] && s[r] < s[l])) ? r : l;
        if (t[c] > lt || (t[c] === lt && s[c] > ls)) break;
        t[i] = t[c]; s[i] = s[c]; f[i] = f[c];
        i = c;
      }
      t[i] = lt; s[i] = ls; f[i] = lf;
    }
    return [time, fn];
  }
}

/** A FIFO resource with `threads` servers: a request waits for a free one, holds it, lets go. */
class Pool {
  constructor(sim, threads) {
    this.sim = sim;
    this.threads = threads;
    this.busy = 0;
    this.waiting = [];
    this.head = 0;
    this.busyTime = 0;
  }
  /** Calls `granted` when a server is free; the caller calls release() when done. */
  acquire(granted) {
    if (this.busy < this.threads) {
      this.busy++;
      granted();
    } else this.waiting.push(granted);
  }
  release() {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head];
      this.waiting[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      next();
    } else this.busy--;
  }
  /** Holds one server for `us`, then calls done. */
  use(us, done) {
    this.acquire(() => {
      this.busyTime += us;
      this.sim.after(us, () => {
        this.release();
        done();
      });
    });
  }
}

/**
 * A machine's CPUs as the kernel shares them (processor sharing): n runnable jobs on c cores,
 * with `background` more jobs always runnable (other programs), each progress at
 * min(1, c / (n + background)) of a core.
 */
class SharedCpu {
  constructor(sim, cores, background, crowding = 0) {
    this.crowding = crowding;
    this.sim = sim;
    this.threads = cores;
    this.background = background;
    this.jobs = []; // { left, done }
    this.at = 0;
    this.token = 0;
    this.busyTime = 0;
  }
  rate() {
    return Math.min(1, this.threads / (this.jobs.length + this.background));
  }
  advance() {
    const now = this.sim.now();
    const dt = now - this.at;
    if (dt > 0 && this.jobs.length > 0) {
      const r = this.rate();
      for (const j of this.jobs) j.left -= dt * r;
    }
    this.at = now;
  }
  schedule() {
    const token = ++this.token;
    if (this.jobs.length === 0) return;
    let min = Infinity;
    for (const j of this.jobs) if (j.left < min) min = j.left;
    this.sim.after(Math.max(0, min) / this.rate(), () => {
      if (token !== this.token) return;
      this.advance();
      // A job left with less than a nanosecond is done: below that, now + its time rounds to
      // now in floating point and the clock would not move (a livelock).
      const finished = this.jobs.filter((j) => j.left <= 1e-3);
      this.jobs = this.jobs.filter((j) => j.left > 1e-3);
      this.schedule();
      for (const j of finished) j.done();
    });
  }
  use(us, done) {
    // Crowding: with more runnable programs than cores, each burst costs more (switches, caches).
    us *= 1 + this.crowding * Math.max(0, this.jobs.length + this.background - this.threads) / this.threads;
    this.busyTime += us;
    if (us <= 0) {
      done();
      return;
    }
    this.advance();
    this.jobs.push({ left: us, done });
    this.schedule();
  }
}

/**
 * When each task was claimed (Infinity: still ready), with two queries a listing needs:
 * the first task at or after p that was still ready at time `snap`, and how many tasks
 * before p were claimed (a Fenwick tree).
 */
class Claims {
  constructor(n) {
    this.n = n;
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.max = new Float64Array(2 * size).fill(-Infinity);
    for (let i = 0; i < n; i++) this.max[size + i] = Infinity;
    for (let i = size - 1; i >= 1; i--) this.max[i] = Math.max(this.max[2 * i], this.max[2 * i + 1]);
    this.fen = new Int32Array(n + 1);
    // Unclaimed tasks, for finding the k-th one fast (a long jump ahead).
    this.free = new Int32Array(n + 1);
    for (let j = 1; j <= n; j++) {
      this.free[j] += 1;
      const up = j + (j & -j);
      if (up <= n) this.free[up] += this.free[j];
    }
    this.claimed = 0;
    this.top = 1;
    while (this.top * 2 <= n) this.top *= 2;
  }
  /** Unclaimed tasks with index < p. */
  freeBefore(p) {
    let s = 0;
    for (let j = Math.min(p, this.n); j > 0; j -= j & -j) s += this.free[j];
    return s;
  }
  /** The index of the t-th unclaimed task (t from 1); -1 if there are fewer. */
  kthFree(t) {
    let pos = 0;
    for (let step = this.top; step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= this.n && this.free[next] < t) {
        pos = next;
        t -= this.free[next];
      }
    }
    return pos < this.n ? pos : -1;
  }
  at(i) {
    return this.max[this.size + i];
  }
  claim(i, time) {
    let k = this.size + i;
    this.max[k] = time;
    for (k >>= 1; k >= 1; k >>= 1) this.max[k] = Math.max(this.max[2 * k], this.max[2 * k + 1]);
    for (let j = i + 1; j <= this.n; j += j & -j) {
      this.fen[j]++;
      this.free[j]--;
    }
    this.claimed++;
  }
  /** Tasks with index < p claimed so far. */
  claimedBefore(p) {
    let s = 0;
    for (let j = Math.min(p, this.n); j > 0; j -= j & -j) s += this.fen[j];
    return s;
  }
  /** The first index >= p whose claim time is later than snap (ready at snap); -1 if none. */
  firstReadyAt(p, snap) {
    if (p >= this.n) return -1;
    const m = this.max;
    let k = this.size + p;
    if (m[k] > snap) return p;
    // Up until a right sibling holds a later claim time, then down to its leftmost such leaf.
    for (;;) {
      if (k === 1) return -1;
      if ((k & 1) === 0 && m[k + 1] > snap) {
        k = k + 1;
        break;
      }
      k >>= 1;
    }
    while (k < this.size) k = m[2 * k] > snap ? 2 * k : 2 * k + 1;
    const i = k - this.size;
    return i < this.n ? i : -1;
  }
}

/**
 * A consumer's cached listing: sorted task indices, in ranges each read at its own time
 * (a refreshed listing puts names read later in front of the old rest, as ReadyListing.refresh).
 */
class Listing {
  constructor() {
    this.segs = []; // { from, to, snap }
    this.pos = 0; // next index to look at
    this.size = 0;
    this.handed = 0;
  }
  get remaining() {
    return Math.max(0, this.size - this.handed);
  }
  /** The next task index in the listing at or after pos, without moving; -1 at the end. */
  peek(claims) {
    for (const seg of this.segs) {
      if (this.pos >= seg.to) continue;
      const i = claims.firstReadyAt(Math.max(this.pos, seg.from), seg.snap);
      if (i >= 0 && i < seg.to) return i;
    }
    return -1;
  }
  next(claims) {
    const i = this.peek(claims);
    if (i < 0) {
      this.handed = this.size;
      this.pos = Infinity;
      return -1;
    }
    this.pos = i + 1;
    this.handed++;
    return i;
  }
  skip(claims, count) {
    // A long jump counts the names still unclaimed now (those claimed since the listing was
    // read are in it too: the jump lands up to that many names further); short ones walk.
    if (count > 256 && this.pos !== Infinity) {
      const i = claims.kthFree(claims.freeBefore(this.pos) + count);
      if (i < 0) {
        this.handed = this.size;
        this.pos = Infinity;
      } else {
        this.pos = i + 1;
        this.handed += count;
      }
      return;
    }
    for (let k = 0; k < count; k++) if (this.next(claims) < 0) return;
  }
}

/**
 * Metadata system calls per model operation, as bench/farm.mjs --count-ops and bench:fsops
 * count them (calls by path or on a folder, and the stat family; data calls as read, write
 * and close do not count): a read is openat (then read and close), a create openat and
 * rename; a listing (below) openat, fstat and a getdents64 per ~450 names plus the last.
 */
const SYSCALLS = { stat: 1, read: 1, rename: 1, unlink: 1, create: 2, scan: 1 };

/**
 * Runs one farm. `cfg`: { hosts, workers, depth, taskSeconds, profile, strategy, seed,
 * sharedCores (null: every host has its own CPUs; a number: one machine's cores that every
 * host, client daemon and server shares, as on the test rigs), hostCores, serverSpeed,
 * maxSeconds }. Returns the figures of the run.
 */
export function simulate(cfg) {
  const P = cfg.profile;
  const S = cfg.strategy;
  // Workers per host: `layout` (as a real run split its consumers over mounts), else W on each of H.
  const layout = cfg.layout ?? Array.from({ length: cfg.hosts }, () => cfg.workers);
  const H = layout.length, D = cfg.depth;
  const W = Math.max(...layout);
  const taskUs = cfg.taskSeconds * 1e6;
  const random = rng(cfg.seed ?? 1);
  const maxUs = (cfg.maxSeconds ?? 1e7) * 1e6;
  const speed = cfg.serverSpeed ?? 1;

  const events = new EventQueue();
  let now = 0;
  const sim = { after: (us, fn) => events.push(now + us, fn), now: () => now };

  const claims = new Claims(D);
  let acked = 0;
  let drainedAt = null;
  /** The counts when `until` of the tasks were done (drainedAt). */
  let atStop = null;
  // When 10% and 50% of the tasks were done: the steady state between (with D ≥ 2.5 × workers
  // the folder still holds tasks then, and no worker is idle yet).
  let t10 = 0, t90 = 0;
  let at10 = null, at90 = null;
  // --until: stop when this share of the tasks is done (the tail of idle pollers is costly to simulate).
  const stopAt = Math.max(1, Math.floor((cfg.until ?? 1) * D));
  let lastChange = 0; // when the queue folder last changed at the server (its mtime)
  const acks = new Int32Array(D);
  const counts = { stat: 0, read: 0, rename: 0, unlink: 0, readdir: 0, scan: 0, syscalls: 0, serverOps: 0, lost: 0, claims: 0, listings: 0, cachedListings: 0 };

  // On a shared machine (the test rigs: consumers, FUSE daemons and servers on one VM) every
  // CPU demand is served by its cores, shared with the other programs' load.
  const shared = cfg.sharedCores != null ? new SharedCpu(sim, cfg.sharedCores, (cfg.otherLoad ?? 0) * cfg.sharedCores, cfg.crowding ?? 0) : null;
  const cpuStretch = 1;
  const wakeUs = cfg.wakeUs ?? 0;
  // One metadata server for all (MooseFS master, a GlusterFS brick), or one per mount (sshfs:
  // each mount has its own sftp-server process).
  const globalServer = P.server.scope === 'host' ? null : new Pool(sim, P.server.threads);
  const hosts = [];
  for (let h = 0; h < H; h++) {
    hosts.push({
      cpu: shared ?? new Pool(sim, cfg.hostCores ?? W),
      server: globalServer ?? new Pool(sim, P.server.threads),
      cache: null, // { snap, fetchedAt, size, claimedBefore }: a listing the mount keeps (sshfs)
      idle: new Set(),
    });
  }
  const servers = globalServer ? [globalServer] : hosts.map((x) => x.server);

  const lat = {};
  for (const [k, v] of Object.entries(P.latencyUs)) lat[k] = v * (P.latencyScale ?? 1);
  const perEntry = (cached) => Math.max(0, ((cached ? lat.readdir500Cached : lat.readdir500) - lat.stat) / 500);

  /**
   * One file-system call through host h: client CPU (the calling process and its FUSE
   * daemon), then the server (threads of its own; on a shared machine also a core), then
   * the rest of the measured latency as waiting (wire, wake-ups). `effect` runs at the
   * server, at the moment the server serves the call, and returns the call's result.
   */
  function op(h, kind, effect, entries = 0) {
    return (resume) => {
      const host = hosts[h];
      const base = kind === 'readdir' ? lat.stat + perEntry(false) * entries : kind === 'scan' ? lat.stat : lat[kind];
      const clientUs = (base * P.client.share + (kind === 'readdir' ? S.listCpuUsPerEntry * entries : 0)) * cpuStretch;
      const serverUs = ((base * P.server.share) / speed) * cpuStretch;
      // On a loaded shared machine each hand-over between processes (the caller, its FUSE
      // daemon, the server and back: P.hops) also waits to be scheduled behind the other programs.
      const waitUs = base * Math.max(0, 1 - P.client.share - P.server.share) + (shared ? (P.hops ?? 0) * wakeUs * shared.background / shared.threads : 0);
      counts[kind]++;
      counts.syscalls += kind === 'readdir' ? 3 + Math.ceil((entries + 1) / 450) : SYSCALLS[kind];
      counts.serverOps++;
      const server = host.server;
      const atServer = () => {
        server.acquire(() => {
          const done = () => {
            const result = effect ? effect() : undefined;
            server.release();
            sim.after(waitUs, () => resume(result));
          };
          server.busyTime += serverUs;
          if (shared) shared.use(serverUs, done);
          else sim.after(serverUs, done);
        });
      };
      host.cpu.use(clientUs, atServer);
    };
  }

  /** Work on the host's CPU only (ddmq's own code, a listing served from the mount's cache). */
  const cpu = (h, us) => (resume) => hosts[h].cpu.use(us, () => resume());
  const sleep = (us) => (resume) => sim.after(us, () => resume());

  function wakeIdle(h) {
    if (!S.notify) return;
    for (const w of hosts[h].idle) w.wake?.();
  }

  // Server-side effects.
  const claimEffect = (i) => () => {
    if (claims.at(i) !== Infinity) return false;
    claims.claim(i, now);
    lastChange = now;
    return true;
  };
  const unlinkEffect = (i) => () => {
    acks[i]++;
    acked++;
    if (acked === Math.ceil(0.1 * D)) {
      t10 = now;
      at10 = { ops: counts.serverOps, lost: counts.lost, claims: counts.claims };
    }
    if (acked === Math.floor(0.5 * D)) {
      t90 = now;
      at90 = { ops: counts.serverOps, lost: counts.lost, claims: counts.claims };
    }
    if (acked === stopAt) {
      drainedAt = now;
      // Stopped early (--until): the figures are up to here. Tasks in flight still finish
      // (and are checked below), but their acks and calls came after the time the figures
      // are divided by. Drained, every call counts, as the farm's consumers count theirs
      // until they stop (the last losses come after the last ack).
      if (stopAt < D) atStop = { ...counts, acked };
    }
    return true;
  };

  function* periodic(w, h) {
    // QueueDirs.check(false): 5 look-ups at most once a second; the settings cache (2 s TTL).
    if (now - w.checkedAt >= 1e6) {
      w.checkedAt = now;
      for (let k = 0; k < S.checkStats; k++) yield op(h, 'stat');
    }
    if (now - w.settingsAt >= S.settingsTtlMs * 1e3) {
      w.settingsAt = now;
      for (let k = 0; k < S.settingsOps; k++) yield op(h, 'stat');
    }
  }

  function* relist(w, h) {
    const started = now;
    yield* periodic(w, h);
    if (now >= w.nextDelayedScan) {
      yield op(h, 'scan'); // promoteDue: delayed/ looked at (absent here)
      w.nextDelayedScan = now + 1e6;
    }
    const host = hosts[h];
    let snap, size, claimedAtSnap;
    const cache = host.cache;
    if (P.listingStalenessS > 0 && cache && now - cache.fetchedAt < P.listingStalenessS * 1e6) {
      counts.cachedListings++;
      yield cpu(h, (lat.readdir500Cached * (cache.size / 500) + S.listCpuUsPerEntry * cache.size) * cpuStretch);
      ({ snap, size } = cache);
      claimedAtSnap = cache.claimedBefore;
    } else {
      let entries = 0;
      let result;
      yield (resume) => {
        // The cost depends on what the folder holds when the server reads it.
        entries = D - claims.claimed;
        op(h, 'readdir', () => ({ snap: now, size: D - claims.claimed, claimedBefore: (p) => claims.claimedBefore(p) }), entries)((r) => {
          result = r;
          resume();
        });
      };
      counts.listings++;
      snap = result.snap;
      size = result.size;
      const frozen = new Map();
      claimedAtSnap = (p) => {
        if (!frozen.has(p)) frozen.set(p, result.claimedBefore(p));
        return frozen.get(p);
      };
      if (P.listingStalenessS > 0) host.cache = { snap, size, fetchedAt: now, claimedBefore: claimedAtSnap };
    }
    const L = w.listing;
    // cursor.ts relist(): an old listing is refreshed, unless a claim was lost since it was
    // made (replaceWhenContended: the names it jumped over are others'); then it is replaced.
    const contended = S.replaceWhenContended && w.lostSinceListing > 0;
    const next = S.refresh && !contended && L.remaining > 0 ? L.peek(claims) : -1;
    if (next >= 0) {
      // ReadyListing.refresh: names earlier than the next one go in front of the old rest.
      const front = next - claimedAtSnap(next);
      const segs = [{ from: 0, to: next, snap }];
      for (const seg of L.segs) if (seg.to > next) segs.push({ from: Math.max(seg.from, next), to: seg.to, snap: seg.snap });
      L.segs = segs;
      L.size = front + L.remaining;
      L.handed = 0;
      L.pos = 0;
    } else {
      const fresh = new Listing();
      fresh.segs = [{ from: 0, to: D, snap }];
      fresh.size = size;
      w.listing = fresh;
      if (S.start === 'random' && size > 1) fresh.skip(claims, Math.floor(random() * Math.min(size, S.startSpread ?? size)));
    }
    w.lostSinceListing = 0;
    w.wonSinceListing = 0;
    // The losing streak after a listing: reset (before issue 12), or one step smaller; with a
    // streak left, the new listing is entered at a random point of the jump window.
    if (S.streakOnList === 'reset') w.losingStreak = 0;
    else if (S.streakOnList === 'decrement') w.losingStreak = Math.max(0, w.losingStreak - 1);
    w.jumpedOver = false;
    // calmWhenEmpty: an empty listing drops the window (no competitor for an empty queue).
    if (S.calmWhenEmpty && w.listing.size === 0) {
      w.losingStreak = 0;
      w.winsInRow = 0;
    }
    if (S.enterAtRandom && w.losingStreak > 0 && !w.sweeping) jump(w);
    w.listedAt = now;
    w.listingCost = now - started;
  }

  /** ClaimCursor.next: a task index, or 'relisted' / 'exhausted'. */
  function* nextName(w, h, mayRelist) {
    const maxAge = Math.max(S.listingIntervalMs * 1e3, 10 * w.listingCost);
    if (now - w.listedAt <= maxAge) {
      const i = w.listing.next(claims);
      if (i >= 0) return i;
      if (!mayRelist) return 'exhausted';
    }
    yield* relist(w, h);
    return w.listing.size === 0 ? 'exhausted' : 'relisted';
  }

  /**
   * cursor.ts jumpWindow(): jumpBase^streak names (the exponent at most jumpMaxExp), never
   * past the last name left (jumpCap 'all'), or (before) never past half of what is left.
   */
  function jumpWindow(w) {
    const most = S.jumpBase ** Math.min(S.jumpMaxExp, w.losingStreak);
    const left = w.listing.remaining;
    return S.jumpCap === 'half' ? Math.min(most, Math.floor(left / 2) + 1) : Math.max(1, Math.min(most, left));
  }

  /** cursor.ts lost(). */
  function lost(w) {
    counts.lost++;
    w.lostSinceListing++;
    w.losingStreak = Math.min(S.streakMax, w.losingStreak + 1);
    w.winsInRow = 0;
    if (w.sweeping) return; // sweep: every name of this listing tried in turn
    const L = w.listing;
    // A loss near the listing's end (fewer names left than jumpBase^streak), in a listing at
    // least max(tailRelistMs, 10 × its cost) old: the next claim lists again instead.
    // The listing's cost: the last one's, scaled to the names left in it (tailCost 'scaled'), or as it was ('full').
    const costNow = S.tailCost === 'full' ? w.listingCost : (w.listingCost * (L.remaining + 1)) / Math.max(1, L.size);
    // tailNeedsWin: only once a claim was won from this listing (a listing of nothing but
    // losses may be a mount's stale cache).
    if (S.tailRelistMs > 0 && (!S.tailNeedsWin || w.wonSinceListing > 0) && L.remaining < S.jumpBase ** Math.min(S.jumpMaxExp, w.losingStreak) && now - w.listedAt >= Math.max(S.tailRelistMs * 1e3, 10 * costNow)) {
      w.listedAt = -Infinity;
      return;
    }
    jump(w);
  }

  /** cursor.ts jump(): a random number of names within the jump window skipped. */
  function jump(w) {
    const count = Math.floor(random() * jumpWindow(w));
    if (count === 0) return;
    w.listing.skip(claims, count);
    w.jumpedOver = true;
  }

  /** Queue.consumeNow with n = 1: a task index or null. */
  function* consumeNow(w, h) {
    yield* periodic(w, h);
    let claimedSinceListing = 1;
    let swept = false;
    for (;;) {
      const c = yield* nextName(w, h, claimedSinceListing > 0);
      if (c === 'exhausted') {
        // sweep (queue.ts, cursor.ts sweep()): nothing claimed but names jumped over: one
        // more listing, walked name by name until a claim is won.
        if (S.sweep && !swept && w.jumpedOver) {
          swept = true;
          w.sweeping = true;
          w.listedAt = -Infinity;
          continue;
        }
        return null;
      }
      if (c === 'relisted') {
        claimedSinceListing = 0;
        continue;
      }
      const won = yield op(h, 'rename', claimEffect(c));
      if (!won) {
        lost(w);
        continue;
      }
      counts.claims++;
      w.wonSinceListing++;
      w.sweeping = false;
      if (S.winsPerStep > 0 && w.losingStreak > 0 && ++w.winsInRow >= S.winsPerStep) {
        w.losingStreak--;
        w.winsInRow = 0;
      }
      // sshfs forgets its cached listing of a folder this mount changed.
      if (P.invalidateOwnChanges) hosts[h].cache = null;
      wakeIdle(h);
      yield op(h, 'read');
      return c;
    }
  }

  /** The idle path: wait (FolderWatcher back-off, or task A's stat-first poll), then look again. */
  function* idleWait(w, h) {
    const jitter = S.pollJitter ? 1 + S.pollJitter * (2 * random() - 1) : 1;
    const interval = w.pollInterval * jitter;
    w.pollInterval = Math.min(S.pollMaxMs * 1e3, w.pollInterval * 2);
    hosts[h].idle.add(w);
    yield (resume) => {
      let fired = false;
      const fire = () => {
        if (fired) return;
        fired = true;
        w.wake = null;
        resume();
      };
      w.wake = fire;
      sim.after(interval, fire);
    };
    hosts[h].idle.delete(w);
  }

  function* statFirst(w, h) {
    // Task A: stat the folder; list only when its mtime moved since the last empty listing,
    // when that listing is too recent to trust the mtime, or as the safety net.
    if (!S.statFirst || w.emptyListedAt === null) return true;
    let seen = 0;
    yield op(h, 'stat', () => {
      seen = lastChange;
      return null;
    });
    const attrStale = P.dirAttrStalenessS * 1e6;
    const visible = now - seen >= attrStale ? seen : w.seenMtime; // a change younger than the attribute cache is not seen yet
    if (visible !== w.seenMtime) return true;
    if (now - w.emptyListedAt >= S.safetyNetS * 1e6) return true;
    if (w.emptyListedAt - w.seenMtime < (S.trustS + P.listingStalenessS) * 1e6) return true;
    return false;
  }

  /**
   * A consumer's first consume: the server clock measured (server-clock.ts: a probe file
   * created, looked at and removed in the queue folder; twice where the server stamps whole
   * seconds) and the queue cleaned (clean.ts: its folders opened and looked at, work/ listed
   * twice and the queue folder once). strace of a first consume on local disk.
   */
  function* startUp(w, h) {
    const looks = S.startStats + (P.wholeSecondStamps ? S.probeStats : 0);
    for (let k = 0; k < looks; k++) yield op(h, 'stat');
    for (let k = 0; k < S.startSmallListings; k++) yield op(h, 'readdir', null, 0);
    if (S.startListsQueue) yield op(h, 'readdir', null, D - claims.claimed);
  }

  function* worker(w, h) {
    // Start-up spread: processes of a job array do not all start in one microsecond.
    yield sleep(random() * (cfg.startSpreadSeconds != null ? cfg.startSpreadSeconds * 1e6 : S.startSpreadMs * 1e3));
    yield* startUp(w, h);
    while (drainedAt === null) {
      if (!(yield* statFirst(w, h))) {
        yield* idleWait(w, h);
        continue;
      }
      const got = yield* consumeNow(w, h);
      if (got === null) {
        if (S.statFirst) {
          w.emptyListedAt = now;
          w.seenMtime = lastChange;
        }
        if (drainedAt !== null) break;
        yield* idleWait(w, h);
        continue;
      }
      w.pollInterval = S.pollMinMs * 1e3;
      w.emptyListedAt = null;
      yield cpu(h, S.jsUsPerTask * cpuStretch);
      // Tasks of T seconds, or spread evenly over T × (1 ± taskJitter).
      if (taskUs > 0) yield sleep(taskUs * (1 + (cfg.taskJitter ?? 0) * (2 * random() - 1)));
      yield* periodic(w, h);
      yield op(h, 'unlink', unlinkEffect(got));
    }
  }

  function start(gen) {
    const step = (value) => {
      for (;;) {
        const r = gen.next(value);
        if (r.done) return;
        let sync = true;
        let syncValue;
        let ran = false;
        r.value((v) => {
          if (sync) {
            ran = true;
            syncValue = v;
          } else step(v);
        });
        sync = false;
        if (!ran) return;
        value = syncValue;
      }
    };
    step(undefined);
  }

  for (let h = 0; h < H; h++) {
    for (let k = 0; k < layout[h]; k++) {
      const w = {
        listing: new Listing(),
        listedAt: -Infinity,
        listingCost: 0,
        losingStreak: 0,
        winsInRow: 0,
        wonSinceListing: 0,
        jumpedOver: false,
        sweeping: false,
        lostSinceListing: 0,
        checkedAt: -Infinity,
        settingsAt: -Infinity,
        nextDelayedScan: 0,
        pollInterval: S.pollMinMs * 1e3,
        emptyListedAt: null,
        seenMtime: 0,
        wake: null,
      };
      start(worker(w, h));
    }
  }

  while (events.size > 0) {
    const [time, fn] = events.pop();
    if (time > maxUs) break;
    now = time;
    fn();
  }

  const end = drainedAt ?? now;
  const seconds = end / 1e6;
  const c = atStop ?? { ...counts, acked };
  const attempts = c.claims + c.lost;
  let twice = 0, never = 0;
  for (let i = 0; i < D; i++) {
    if (acks[i] > 1) twice++;
    if (acks[i] === 0) never++;
  }
  return {
    fs: P.name,
    // In the steady state (from 10% to 50% of the tasks done), the share of the workers'
    // time spent in tasks: throughput × T / workers.
    efficiency: t90 > t10 ? round((Math.floor(0.5 * D) - Math.ceil(0.1 * D)) * taskUs / ((t90 - t10) * layout.reduce((a, b) => a + b, 0)), 3) : null,
    hosts: H,
    workers: W,
    consumers: layout.reduce((a, b) => a + b, 0),
    depth: D,
    taskSeconds: cfg.taskSeconds,
    drained: drainedAt !== null,
    seconds: round(seconds, 3),
    throughput: round(c.acked / seconds, 2),
    claims: c.claims,
    lost: c.lost,
    lostRatio: round(attempts ? c.lost / attempts : 0, 4),
    listings: c.listings,
    cachedListings: c.cachedListings,
    serverOps: c.serverOps,
    opsPerSecond: round(c.serverOps / seconds, 1),
    syscallsPerSecond: round(c.syscalls / seconds, 1),
    opsPerTask: round(c.serverOps / Math.max(1, c.acked), 2),
    byKind: { stat: c.stat, read: c.read, rename: c.rename, unlink: c.unlink, readdir: c.readdir, scan: c.scan },
    serverUtilisation: round(Math.min(1, servers.reduce((m, x) => Math.max(m, x.busyTime), 0) / (P.server.threads * end)), 3),
    machineUtilisation: shared ? round(shared.busyTime / (shared.threads * end), 3) : null,
    // The steady state, from 10% to 50% of the tasks done.
    steady: at10 && at90 && t90 > t10 ? {
      throughput: round((Math.floor(0.5 * D) - Math.ceil(0.1 * D)) / ((t90 - t10) / 1e6), 2),
      opsPerSecond: round((at90.ops - at10.ops) / ((t90 - t10) / 1e6), 1),
      lostRatio: round((at90.lost - at10.lost) / Math.max(1, at90.lost - at10.lost + at90.claims - at10.claims), 4),
    } : null,
    acked,
    ackedTwice: twice,
    neverAcked: never,
  };
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
