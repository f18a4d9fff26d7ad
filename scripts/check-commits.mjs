// Commit messages, checked in CI (`npm run lint:commits`): a subject of at
// most 72 characters, a blank line, then a body saying why. Checked from the
// commit the rule was adopted at (CONTRIBUTING.md); history before it stays
// as it was written.
import { execFileSync } from 'node:child_process';

const ADOPTED_AFTER = 'a20cd63'; // the last commit written before the rule
const MAX_SUBJECT = 72;

const git = (...args) => execFileSync('git', args, { encoding: 'utf8' });
let range = `${ADOPTED_AFTER}..HEAD`;
try {
  git('cat-file', '-e', `${ADOPTED_AFTER}^{commit}`);
} catch {
  // A shallow clone without that commit: check what it has.
  range = 'HEAD';
  console.log(`check-commits: ${ADOPTED_AFTER} is not in this clone; checking HEAD only`);
}
// git writes %x00 as a NUL byte: a separator no message contains.
const SEP = '\u0000';
const out = git('log', '--no-merges', '--format=%h%x00%B%x00%x00', range);
const problems = [];
let count = 0;
for (const entry of out.split(`${SEP}${SEP}`)) {
  const trimmed = entry.replace(/^\n+/, '');
  if (trimmed === '') continue;
  const [hash, message] = trimmed.split(SEP);
  const lines = message.replace(/\s+$/, '').split('\n');
  const subject = lines[0] ?? '';
  count++;
  if (subject.length > MAX_SUBJECT) problems.push(`${hash}: subject is ${subject.length} characters (at most ${MAX_SUBJECT}): ${subject}`);
  if (lines.length < 3 || lines[1] !== '' || lines.slice(2).every((l) => l.trim() === ''))
    problems.push(`${hash}: no body after a blank line (say why): ${subject}`);
}
if (problems.length > 0) {
  console.error(`check-commits: ${problems.length} problem(s) in ${count} commit(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-commits: ${count} commit(s) since ${ADOPTED_AFTER}: subjects ≤ ${MAX_SUBJECT} characters, each with a body`);
