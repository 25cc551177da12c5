/**
 * The one error type of src/io. Every message names the file (and, where it
 * applies, the tensor or config field) so a user can fix the checkpoint.
 */
import { FactlensError } from '../errors';
export class CheckpointError extends FactlensError {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}
