import { DdmqError } from '../../format/errors.js';
import { checkQueueName } from '../../format/names.js';
import { checkSetting, isSettingKey, SETTING_KEYS } from '../../format/settings.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, EXIT, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';

export const settings: CommandSpec = {
  name: 'settings',
  summary: 'Show or change the settings of the root or of a queue',
  help:
    'Shows the settings in force (defaults < ROOT/ddmq.yaml < QUEUE/ddmq.yaml) and where each comes from.\n' +
    'Keys: ' + SETTING_KEYS.join(', ') + '.\n' +
    "expiry_grace defaults to 5 s where leases are judged by the file server's clock (measured from a probe\n" +
    "file's modification time), else 30 s; its line says which. DDMQ_SERVER_CLOCK=0 uses this host's clock.\n" +
    'Example: ddmq settings /tmp/ddmq tasks --set message_timeout=3600 --unset priority',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue (default: the root)', required: false }],
  options: [
    CREATE,
    { key: 'set', flags: '--set <key=value...>', description: 'set keys in the ddmq.yaml of the queue (or root); values are YAML', type: 'strings' },
    { key: 'unset', flags: '--unset <key...>', description: 'remove keys from that ddmq.yaml, so that the layer above applies', type: 'strings' },
    ...REPORT_OPTIONS,
  ],
  async run(input, ctx) {
    const queue = input.queue === undefined ? undefined : checkQueueName(input.queue);
    const changes: Record<string, unknown> = {};
    const sets = Array.isArray(input.set) ? (input.set as string[]) : [];
    if (sets.length > 0) {
      const { parse } = await import('yaml');
      for (const pair of sets) {
        const eq = pair.indexOf('=');
        const key = pair.slice(0, eq);
        if (eq < 1 || !isSettingKey(key)) {
          throw new DdmqError('INVALID_ARGUMENT', `--set ${JSON.stringify(pair)}: expected KEY=VALUE with KEY one of ${SETTING_KEYS.join(', ')}`);
        }
        const text = pair.slice(eq + 1);
        const value: unknown = parse(text, { version: '1.1' });
        // Checked here to name the value as given: "1e400", not the Infinity it reads as.
        if (value !== null) checkSetting(key, value, `--set ${pair}`, JSON.stringify(text));
        changes[key] = value;
      }
    }
    for (const key of (input.unset as string[] | undefined) ?? []) {
      if (!isSettingKey(key)) throw new DdmqError('INVALID_ARGUMENT', `--unset ${key}: not a setting (${SETTING_KEYS.join(', ')})`);
      changes[key] = null;
    }
    const broker = await openBroker(input, ctx);
    if (queue !== undefined && input.f) await broker.createQueue(queue);
    if (Object.keys(changes).length > 0) await broker.setSettings(queue, changes);
    if (input.s) return EXIT.OK;
    const effective = await broker.settings(queue);
    const rootLayer = await broker.readSettingsFile();
    const queueLayer = queue === undefined ? {} : await broker.readSettingsFile(queue);
    const clock = broker.clock();
    const clockNote = clock.kind === 'server' ? "default: file server's clock in use" : clock.kind === 'fallback' ? "default: this host's clock (file server's not usable)" : "default: this host's clock";
    const rows = SETTING_KEYS.map((key) => ({
      key,
      value: effective[key],
      from: key in queueLayer ? 'queue' : key in rootLayer ? 'root' : key === 'expiry_grace' ? clockNote : 'default',
    }));
    await emit(ctx, String(input.format), rows, (r) => `${r.key}: ${JSON.stringify(r.value)}  (${r.from})`);
    return EXIT.OK;
  },
};
