import { describe, expect, it } from 'vitest';
import { declaredMediaType, declaredName } from '../../src/core/files/well-known-metadata.js';
import { contentDisposition } from '../../src/http/content-disposition.js';

describe('tus metadata: names and types', () => {
  it('takes filename, else name, and filetype, else type', () => {
    expect(declaredName({ filename: 'a.txt', name: 'b.txt' })).toBe('a.txt');
    expect(declaredName({ name: 'b.txt' })).toBe('b.txt');
    expect(declaredName({})).toBeUndefined();
    expect(declaredMediaType({ type: 'Image/PNG' })).toBe('image/png');
    expect(declaredMediaType({ filetype: 'not a type' })).toBeUndefined();
  });

  it('builds attachment headers that no client-supplied name can break', () => {
    expect(contentDisposition(undefined)).toBe('attachment');
    expect(contentDisposition('plain.txt')).toBe(`attachment; filename="plain.txt"; filename*=UTF-8''plain.txt`);
    expect(contentDisposition('日本語.png')).toBe(
      `attachment; filename="___.png"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.png`,
    );
    const hostile = contentDisposition('a"\r\nSet-Cookie: x=1\\..\\/evil');
    expect(hostile).not.toMatch(/[\r\n]/);
    expect(hostile.split('"')).toHaveLength(3);
  });
});
