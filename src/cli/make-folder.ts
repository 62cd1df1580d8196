import { DdmqError, isDdmqError } from '../format/errors.js';
import { makeDirs } from '../store/fs-write.js';

/**
 * Makes the folder an option's file goes into, with its missing parents. Not Node's
 * recursive mkdirSync, which spins for ever on some paths (under /proc, for one). The
 * error names the option and the path the user gave.
 */
export function makeFolderFor(option: string, given: string, folder: string): void {
  try {
    makeDirs(folder);
  } catch (err) {
    if (!isDdmqError(err)) throw err;
    throw new DdmqError(err.code, `${option} ${given}: ${err.message}`, { path: given });
  }
}
