//! NumPy `.npz` archives as `np.savez` writes them: a ZIP file of `.npy` members, one per
//! array, stored without compression (the ZIP format: PKWARE's APPNOTE.TXT, sections 4.3 and
//! 4.5; numpy's `_savez` writes each member with `force_zip64=True`, so a local header may
//! carry a ZIP64 extra field, which is skipped by its length). `np.savez_compressed`'s
//! deflated members are refused with a message saying how to write a file this reads.
//! Each member's CRC-32 is checked.

/// An archive's members: `(array name, the member's .npy bytes)`, the name without `.npy`.
pub fn members(bytes: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
    let eocd = end_of_directory(bytes).ok_or("not a ZIP archive (no end of central directory)")?;
    let entries = u16_at(bytes, eocd + 10).ok_or("truncated")? as usize;
    let mut at = u32_at(bytes, eocd + 16).ok_or("truncated")? as usize;
    let mut out = Vec::with_capacity(entries);
    for _ in 0..entries {
        if u32_at(bytes, at) != Some(0x0201_4b50) {
            return Err("a broken central directory".into());
        }
        let field = |off: usize| u16_at(bytes, at + off).ok_or("truncated");
        let method = field(10)?;
        let crc = u32_at(bytes, at + 16).ok_or("truncated")?;
        let mut size = u64::from(u32_at(bytes, at + 20).ok_or("truncated")?);
        let (name_len, extra_len, comment_len) = (
            field(28)? as usize,
            field(30)? as usize,
            field(32)? as usize,
        );
        let mut local = u64::from(u32_at(bytes, at + 42).ok_or("truncated")?);
        let name = bytes.get(at + 46..at + 46 + name_len).ok_or("truncated")?;
        let name = String::from_utf8_lossy(name).into_owned();
        // ZIP64: sizes and offsets of 0xFFFFFFFF are in the extra field (id 1), in the order
        // uncompressed size, compressed size, local header offset, each present only if its
        // 32-bit field is 0xFFFFFFFF.
        let extra = bytes
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or("truncated")?;
        let uncompressed32 = u32_at(bytes, at + 24).ok_or("truncated")?;
        zip64(extra, uncompressed32, &mut size, &mut local);
        at += 46 + name_len + extra_len + comment_len;
        let Some(array) = name.strip_suffix(".npy") else {
            return Err(format!("member `{name}` is not a .npy array"));
        };
        if method != 0 {
            return Err(format!(
                "member `{name}` is compressed (method {method}; np.savez_compressed writes \
                 deflated members): gradscope reads np.savez's uncompressed archives; write \
                 the file with np.savez, or save each array with np.save"
            ));
        }
        let local = usize::try_from(local).map_err(|_| "too large")?;
        if u32_at(bytes, local) != Some(0x0403_4b50) {
            return Err(format!("member `{name}` has a broken local header"));
        }
        let skip = 30
            + u16_at(bytes, local + 26).ok_or("truncated")? as usize
            + u16_at(bytes, local + 28).ok_or("truncated")? as usize;
        let size = usize::try_from(size).map_err(|_| "too large")?;
        let data = bytes
            .get(local + skip..local + skip + size)
            .ok_or_else(|| format!("member `{name}` is truncated"))?;
        if crc32(data) != crc {
            return Err(format!(
                "member `{name}` is corrupt (its CRC-32 does not match)"
            ));
        }
        out.push((array.to_string(), data));
    }
    Ok(out)
}

/// Sizes and the local header's offset from a central entry's ZIP64 extra field.
fn zip64(extra: &[u8], uncompressed32: u32, size: &mut u64, local: &mut u64) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let (id, len) = (
            u16::from_le_bytes([extra[i], extra[i + 1]]),
            u16::from_le_bytes([extra[i + 2], extra[i + 3]]) as usize,
        );
        let body = extra.get(i + 4..i + 4 + len).unwrap_or(&[]);
        if id == 1 {
            let mut fields = body
                .chunks_exact(8)
                .map(|c| c.iter().rev().fold(0u64, |a, b| (a << 8) | u64::from(*b)));
            if uncompressed32 == u32::MAX {
                let _ = fields.next();
            }
            if *size == u64::from(u32::MAX) {
                *size = fields.next().unwrap_or(*size);
            }
            if *local == u64::from(u32::MAX) {
                *local = fields.next().unwrap_or(*local);
            }
        }
        i += 4 + len;
    }
}

/// The end-of-central-directory record's offset: its signature, searched from the end (a
/// comment of up to 65535 bytes may follow it).
fn end_of_directory(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(22)?;
    let first = last.saturating_sub(65_535);
    (first..=last)
        .rev()
        .find(|&i| u32_at(bytes, i) == Some(0x0605_4b50))
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// CRC-32 (ISO 3309, the polynomial 0xEDB88320 reflected, as ZIP uses it).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_the_check_string() {
        // The standard check value of CRC-32/ISO-HDLC for "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn what_is_not_an_archive_is_named() {
        assert!(members(b"hello").is_err());
        assert!(members(&[0u8; 64]).is_err());
    }
}
