import { describe, expect, it } from 'vitest';
import { RunInvalidError } from '../../shared/errors';
import {
  buildTrainingArgv,
  hyperparameterArgv,
  HyperparametersSchema,
  MAX_VALUE_LENGTH,
  parseHyperparameters,
} from '../../shared/domain/hyperparameters';

const long = 'x'.repeat(MAX_VALUE_LENGTH);

/** [label, input, expected argv] — hostile values must come out as exactly one argv element each. */
const cases: [string, unknown, string[]][] = [
  ['map of mixed scalars', { epochs: 50, lr: 0.001, batch_size: 32 }, ['--epochs', '50', '--lr', '0.001', '--batch-size', '32']],
  ['string form', 'epochs=50,lr=0.001,batch_size=32', ['--epochs', '50', '--lr', '0.001', '--batch-size', '32']],
  ['insertion order kept', { zeta: 1, alpha: 2, mid: 3 }, ['--zeta', '1', '--alpha', '2', '--mid', '3']],
  ['booleans', { amp: true, compile: false }, ['--amp', 'true', '--compile', 'false']],
  ['tiny and negative numbers', { lr: 1e-7, shift: -0.5 }, ['--lr', '1e-7', '--shift', '-0.5']],
  ['already kebab key', { 'warmup-steps': 100 }, ['--warmup-steps', '100']],
  ['empty string form', '', []],
  ['empty map', {}, []],
  ['trailing comma ignored', 'epochs=5,', ['--epochs', '5']],
  ['spaces around string-form keys', 'epochs=5, lr=0.1', ['--epochs', '5', '--lr', '0.1']],
  ['empty value in string form', 'tag=', ['--tag', '']],
  ['empty value in map', { tag: '' }, ['--tag', '']],
  ['= inside value', 'opt=a=b==c', ['--opt', 'a=b==c']],
  ['command substitution', { cmd: '$(rm -rf /)' }, ['--cmd', '$(rm -rf /)']],
  ['backticks', 'cmd=`touch /tmp/x`', ['--cmd', '`touch /tmp/x`']],
  ['semicolon, pipe and &&', { s: 'a; b | c && d' }, ['--s', 'a; b | c && d']],
  ['newline', { s: 'line1\nline2' }, ['--s', 'line1\nline2']],
  ['single quote', { s: "it's" }, ['--s', "it's"]],
  ['double quote', { s: 'say "hi"' }, ['--s', 'say "hi"']],
  ['backslash', { s: 'a\\b\\' }, ['--s', 'a\\b\\']],
  ['glob', { files: '*.py' }, ['--files', '*.py']],
  ['tilde', { home: '~' }, ['--home', '~']],
  ['$HOME', { home: '$HOME/x' }, ['--home', '$HOME/x']],
  ['unicode', { label: 'données-日本語-🚀' }, ['--label', 'données-日本語-🚀']],
  ['spaces kept, not trimmed, in values', 'name= two words ', ['--name', ' two words ']],
  ['value starting with dashes', { extra: '--not-a-flag' }, ['--extra', '--not-a-flag']],
  ['very long value', { blob: long }, ['--blob', long]],
];

describe('hyperparameters → argv', () => {
  it.each(cases)('%s', (_label, input, expected) => {
    const normalised = parseHyperparameters(input);
    expect(hyperparameterArgv(normalised)).toEqual(expected);
    // The zod schema normalises to the same thing.
    expect(HyperparametersSchema.parse(input)).toEqual(normalised);
  });

  it('normalises every value to a string', () => {
    expect(parseHyperparameters({ epochs: 50, amp: true, name: 'x' })).toEqual({ epochs: '50', amp: 'true', name: 'x' });
  });
});

/** [label, input, path of the issue, words the message must contain] */
const invalid: [string, unknown, string, string][] = [
  ['key starting with a digit', { '9lives': 1 }, 'hyperparameters.9lives', 'not a valid hyperparameter name'],
  ['key with a space', 'bad key=1', 'hyperparameters.bad key', 'not a valid hyperparameter name'],
  ['key with shell characters', { 'x;rm': 1 }, 'hyperparameters.x;rm', 'start with a letter'],
  ['key starting with a dash', '--epochs=5', 'hyperparameters.--epochs', 'start with a letter'],
  ['empty key', '=5', 'hyperparameters', 'not a valid hyperparameter name'],
  ['repeated key in the string form', 'epochs=5,lr=1,epochs=6', 'hyperparameters.epochs', 'more than once'],
  ['snake and kebab collide', { batch_size: 32, 'batch-size': 64 }, 'hyperparameters.batch-size', 'both become --batch-size'],
  ['collision in the string form', 'batch-size=1,batch_size=2', 'hyperparameters.batch_size', 'both become --batch-size'],
  ['bare key without =', 'epochs=5,verbose', 'hyperparameters.verbose', 'write verbose=VALUE'],
  ['null value', { epochs: null }, 'hyperparameters.epochs', 'string, number or boolean'],
  ['nested object value', { opt: { a: 1 } }, 'hyperparameters.opt', 'string, number or boolean'],
  ['NaN value', { lr: Number.NaN }, 'hyperparameters.lr', 'finite number'],
  ['NUL in value', { s: 'a\0b' }, 'hyperparameters.s', 'NUL'],
  ['value too long', { blob: `${long}x` }, 'hyperparameters.blob', `at most ${MAX_VALUE_LENGTH}`],
  ['neither map nor string', ['epochs=5'], 'hyperparameters', 'must be a map'],
  ['a number', 5, 'hyperparameters', 'must be a map'],
];

describe('invalid hyperparameters', () => {
  it.each(invalid)('%s', (_label, input, path, words) => {
    let error: unknown;
    try {
      parseHyperparameters(input);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RunInvalidError);
    if (!(error instanceof RunInvalidError)) return;
    expect(error.name).toBe('Run.Invalid');
    expect(error.issues).toContainEqual({ path, message: expect.stringContaining(words) });
    expect(error.message).toContain(path);
  });

  it('reports zod issues at the key, so a run spec names hyperparameters.<key>', () => {
    const result = HyperparametersSchema.safeParse('epochs=5,epochs=6');
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path)).toEqual([['epochs']]);
  });

  it('hyperparameterArgv rejects keys it would have to invent a flag for', () => {
    expect(() => hyperparameterArgv({ 'a b': '1' })).toThrow(RunInvalidError);
    expect(() => hyperparameterArgv({ batch_size: '1', 'batch-size': '2' })).toThrow(/both become --batch-size/);
  });
});

describe('buildTrainingArgv', () => {
  const code = { interpreter: 'python3', entrypoint: 'train.py' };

  it('puts interpreter, entrypoint, hyperparameters, then args', () => {
    expect(
      buildTrainingArgv({ code, hyperparameters: { epochs: '50', batch_size: '32' }, args: ['--resume', 'auto'] }),
    ).toEqual(['python3', 'train.py', '--epochs', '50', '--batch-size', '32', '--resume', 'auto']);
  });

  it('uses the command instead of interpreter and entrypoint when given', () => {
    expect(
      buildTrainingArgv({
        code: { interpreter: 'python3', command: ['torchrun', '--nproc-per-node', '4', 'train.py'] },
        hyperparameters: { lr: '0.1' },
        args: [],
      }),
    ).toEqual(['torchrun', '--nproc-per-node', '4', 'train.py', '--lr', '0.1']);
  });

  it.each([
    ['--epochs', 'epochs'],
    ['--epochs=10', 'epochs'],
    ['--batch_size', 'batch-size'],
    ['--batch-size', 'batch_size'],
  ])('rejects an arg %s that repeats hyperparameter %s', (arg, key) => {
    expect(() => buildTrainingArgv({ code, hyperparameters: { [key]: '1' }, args: ['--seed', '1', arg, '5'] })).toThrow(
      new RegExp(`hyperparameters\\.${key}: args\\.2 \\("${arg}"\\)`),
    );
  });

  it('lets positional args after -- look like flags', () => {
    expect(buildTrainingArgv({ code, hyperparameters: { epochs: '1' }, args: ['--', '--epochs'] })).toEqual([
      'python3', 'train.py', '--epochs', '1', '--', '--epochs',
    ]);
  });

  it('refuses a spec with neither entrypoint nor command', () => {
    expect(() => buildTrainingArgv({ code: { interpreter: 'python3' }, hyperparameters: {}, args: [] })).toThrow(
      /code\.entrypoint/,
    );
  });
});
