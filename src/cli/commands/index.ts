import type { CommandSpec } from '../spec.js';
import { ack } from './ack.js';
import { clean } from './clean.js';
import { completionCommand } from './completion.js';
import { consume } from './consume.js';
import { create } from './create.js';
import { delMsg } from './del-msg.js';
import { remove } from './delete.js';
import { jsonCommand } from './json.js';
import { manCommand } from './man.js';
import { nack } from './nack.js';
import { peek } from './peek.js';
import { publish } from './publish.js';
import { purge } from './purge.js';
import { redrive } from './redrive.js';
import { settings } from './settings.js';
import { statsCommand } from './stats.js';
import { topCommand } from './top.js';
import { view } from './view.js';
import { workCommand } from './work.js';

/** Every command, in the order --help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  view,
  create,
  remove,
  publish,
  consume,
  ack,
  nack,
  delMsg,
  peek,
  purge,
  clean,
  redrive,
  settings,
  statsCommand,
  topCommand,
  workCommand,
  jsonCommand(() => COMMANDS),
  completionCommand(() => COMMANDS),
  manCommand(() => COMMANDS),
];
