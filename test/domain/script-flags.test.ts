import { describe, expect, it } from 'vitest';
import { closestFlag, describeUnknown, editDistance, unknownHyperparameters } from '../../shared/domain/script-flags';

const LINEAR = ['--batch-size', '--data-dir', '--epochs', '--fail-at-epoch', '--hidden', '--hold-after-epoch', '--lr', '--min-epoch-seconds', '--seed'];

describe('hyperparameters against the flags a script declares', () => {
  it('accepts keys whose dashed flag is declared, or an unambiguous prefix of one as argparse does', () => {
    const script = { flags: LINEAR, allowAbbrev: true };
    expect(unknownHyperparameters({ epochs: '3', batch_size: '32', 'min-epoch-seconds': '1', hid: '8' }, script)).toEqual([]);
    // `--h` could be --hidden or --hold-after-epoch: argparse refuses an ambiguous prefix.
    expect(unknownHyperparameters({ h: '1' }, script).map((u) => u.key)).toEqual(['h']);
    // allow_abbrev=False: only the whole flag.
    expect(unknownHyperparameters({ hid: '8' }, { flags: LINEAR, allowAbbrev: false })).toEqual([{ key: 'hid', flag: '--hid', suggestion: '--hidden' }]);
  });

  it('names the closest declared flag: a typo, or the same first word', () => {
    const script = { flags: LINEAR, allowAbbrev: true };
    expect(unknownHyperparameters({ lr_rate: '0.1', epochs: '2', bach_size: '8' }, script)).toEqual([
      { key: 'lr_rate', flag: '--lr-rate', suggestion: '--lr' },
      { key: 'bach_size', flag: '--bach-size', suggestion: '--batch-size' },
    ]);
    expect(closestFlag('--epoch-count', LINEAR)).toBe('--epochs');
    expect(closestFlag('--momentum', LINEAR)).toBeUndefined();
    expect(closestFlag('--sed', ['-s', '--seed'])).toBe('--seed');
  });

  it('says what to do, in one line per key', () => {
    expect(describeUnknown({ key: 'lr_rate', flag: '--lr-rate', suggestion: '--lr' }, LINEAR)).toBe('unknown hyperparameter lr_rate: the script has no --lr-rate; did you mean --lr?');
    expect(describeUnknown({ key: 'momentum', flag: '--momentum' }, ['-v', '--lr', '--seed'])).toBe('unknown hyperparameter momentum: the script has no --momentum (its flags: --lr, --seed)');
    // A script flag with underscores can never receive a hyperparameter: keys become dashed flags.
    const [unreachable] = unknownHyperparameters({ batch_size: '8' }, { flags: ['--batch_size'], allowAbbrev: true });
    expect(unreachable).toEqual({ key: 'batch_size', flag: '--batch-size', suggestion: '--batch_size' });
    expect(describeUnknown({ key: 'batch_size', flag: '--batch-size', suggestion: '--batch_size' }, ['--batch_size'])).toContain('rename it --batch-size in the script');
  });

  it('measures edits', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'lr')).toBe(2);
    expect(editDistance('lr', 'lr')).toBe(0);
  });
});
