// Markdown from a code cell, so a notebook's prose can quote numbers computed above it.
import { display } from './tslab';

export function markdown(text: string): void {
  if (!display({ 'text/markdown': text, 'text/plain': text })) console.log(text);
}
