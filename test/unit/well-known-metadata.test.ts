import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { describeFile } from '../../src/core/files/well-known-metadata.js';

describe('well-known upload metadata', () => {
  it('fills name, type, folder, tags and batch from either spelling and keeps the rest as user metadata', () => {
    const described = describeFile({
      filename: 'report.pdf',
      filetype: 'Application/PDF',
      folder: ' invoices ',
      tags: 'a, b,,a ,c',
      batch: 'b1',
      retention: '2d',
      owner: 'alice',
      empty: null,
    });
    expect(described).toEqual({
      name: 'report.pdf',
      mimeType: 'application/pdf',
      folder: 'invoices',
      tags: ['a', 'b', 'c'],
      batch: 'b1',
      retentionMs: 2 * 86_400_000,
      userMetadata: { owner: 'alice', empty: null },
    });
    expect(describeFile({ name: 'x', type: 'image/png' })).toMatchObject({ name: 'x', mimeType: 'image/png' });
  });

  it('reads retention as a duration or whole seconds and refuses anything else', () => {
    expect(describeFile({ retention: '3600' }).retentionMs).toBe(3_600_000);
    expect(describeFile({ retention: '90m' }).retentionMs).toBe(90 * 60_000);
    expect(describeFile({}).retentionMs).toBeUndefined();
    for (const bad of ['soon', '-5', '0', '1w', '1e9d']) {
      expect(() => describeFile({ retention: bad }), bad).toThrow(FerryError);
    }
  });

  it('ignores a declared type that is not a media type and empty folder or batch values', () => {
    expect(describeFile({ filetype: 'not a type', folder: '  ', batch: '' })).toMatchObject({
      mimeType: undefined,
      folder: null,
      batch: null,
      tags: [],
    });
  });
});
