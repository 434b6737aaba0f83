//! The ioctls of Occlum's `/dev/sgx`, behind a safe interface.
//!
//! Occlum (an SGX library OS) gives the application inside it no key or quote files as
//! Gramine does: everything goes through `ioctl()` on the virtual device `/dev/sgx`
//! (occlum `src/libos/src/fs/dev_fs/dev_sgx/`, checked at commit 690d5dbf). veritee
//! needs three of them:
//!
//! | request | number | argument |
//! |---|---|---|
//! | `SGXIOC_GET_DCAP_QUOTE_SIZE` | `_IOR('s', 7, uint32_t)` = `0x80047307` | the size, written |
//! | `SGXIOC_GEN_DCAP_QUOTE` | `_IOWR('s', 8, ...)` = `0xC0187308` | report data in, quote out ([`GenDcapQuoteArg`]) |
//! | `SGXIOC_GET_KEY` | `_IOWR('s', 11, ...)` = `0xC010730B` | `sgx_key_request_t` in, 16-byte key out ([`GetKeyArg`]) |
//!
//! This crate holds the only unsafe code of veritee's Occlum backend: the ioctl calls,
//! each over buffers this crate owns and sizes. What the requests mean (the layout of
//! `sgx_key_request_t`, the quote) is written in `veritee-platform`'s `hw::occlum`.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Length of `sgx_key_request_t`.
pub const KEY_REQUEST_LEN: usize = 512;
/// Length of an SGX key (`sgx_key_128bit_t`).
pub const KEY_LEN: usize = 16;
/// Length of `sgx_report_data_t`.
pub const REPORT_DATA_LEN: usize = 64;
/// Largest DCAP quote accepted (one with its PCK chain is about 5 KiB).
pub const QUOTE_MAX: u32 = 64 * 1024;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;
const SGX_MAGIC: u32 = b's' as u32;

/// Linux's `_IOC(dir, 's', nr, size)`, which Occlum's LibOS decodes the same way.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (SGX_MAGIC << 8) | nr
}

/// `SGXIOC_GET_KEY`'s argument: where the request is, and where the key goes.
#[repr(C)]
pub struct GetKeyArg {
    key_request: *const u8,
    key: *mut u8,
}

/// `SGXIOC_GEN_DCAP_QUOTE`'s argument: the report data, the buffer's size (read, not
/// written back) and the buffer.
#[repr(C)]
pub struct GenDcapQuoteArg {
    report_data: *const u8,
    quote_size: *mut u32,
    quote_buf: *mut u8,
}

/// `_IOR('s', 7, uint32_t)`.
pub const SGXIOC_GET_DCAP_QUOTE_SIZE: u32 = ioc(IOC_READ, 7, size_of::<u32>());
/// `_IOWR('s', 8, sgxioc_gen_dcap_quote_arg_t)`.
pub const SGXIOC_GEN_DCAP_QUOTE: u32 = ioc(IOC_READ | IOC_WRITE, 8, size_of::<GenDcapQuoteArg>());
/// `_IOWR('s', 11, sgxioc_get_key_arg_t)`.
pub const SGXIOC_GET_KEY: u32 = ioc(IOC_READ | IOC_WRITE, 11, size_of::<GetKeyArg>());

// The numbers Occlum's own test (test/ioctl/main.c) and dcap_lib use, on x86-64.
const _: () = assert!(SGXIOC_GET_DCAP_QUOTE_SIZE == 0x8004_7307);
const _: () = assert!(SGXIOC_GEN_DCAP_QUOTE == 0xC018_7308);
const _: () = assert!(SGXIOC_GET_KEY == 0xC010_730B);

/// A key request aligned as `sgx_key_request_t` is (8 bytes): the LibOS reads it in place.
#[repr(C, align(8))]
struct AlignedRequest([u8; KEY_REQUEST_LEN]);

fn check(result: libc::c_int, what: &str) -> io::Result<()> {
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    Err(io::Error::new(error.kind(), format!("{what}: {error}")))
}

/// `SGXIOC_GET_KEY`: the key EGETKEY derives for `request` (an encoded
/// `sgx_key_request_t`). The key is written into `key`, which the caller wipes.
pub fn get_key(
    device: &File,
    request: &[u8; KEY_REQUEST_LEN],
    key: &mut [u8; KEY_LEN],
) -> io::Result<()> {
    let aligned = AlignedRequest(*request);
    let mut arg = GetKeyArg {
        key_request: aligned.0.as_ptr(),
        key: key.as_mut_ptr(),
    };
    // SAFETY: `arg` points at a 512-byte request and a 16-byte key buffer, both alive
    // and exclusively ours for the call, as SGXIOC_GET_KEY's argument requires; the
    // LibOS reads the one and writes the other, nothing else.
    let result = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            SGXIOC_GET_KEY as _,
            &mut arg as *mut GetKeyArg,
        )
    };
    check(result, "SGXIOC_GET_KEY")
}

/// `SGXIOC_GET_DCAP_QUOTE_SIZE`: the size of this enclave's DCAP quotes. Harmless to
/// ask, so it also tells Occlum's device from another that answers ioctls.
pub fn dcap_quote_size(device: &File) -> io::Result<u32> {
    let mut size: u32 = 0;
    // SAFETY: the argument is a pointer to a u32 we own, which the LibOS writes.
    let result = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            SGXIOC_GET_DCAP_QUOTE_SIZE as _,
            &mut size as *mut u32,
        )
    };
    check(result, "SGXIOC_GET_DCAP_QUOTE_SIZE")?;
    Ok(size)
}

/// `SGXIOC_GET_DCAP_QUOTE_SIZE`, then `SGXIOC_GEN_DCAP_QUOTE`: a DCAP quote over
/// `report_data`. A size of 0 or above [`QUOTE_MAX`] is refused.
pub fn dcap_quote(device: &File, report_data: &[u8; REPORT_DATA_LEN]) -> io::Result<Vec<u8>> {
    let mut size = dcap_quote_size(device)?;
    if size == 0 || size > QUOTE_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "SGXIOC_GET_DCAP_QUOTE_SIZE answered {size}: a quote is 1 to {QUOTE_MAX} bytes \
                 (is the LibOS built with DCAP?)"
            ),
        ));
    }
    let mut quote = vec![0u8; size as usize];
    let mut arg = GenDcapQuoteArg {
        report_data: report_data.as_ptr(),
        quote_size: &mut size,
        quote_buf: quote.as_mut_ptr(),
    };
    // SAFETY: `arg` points at 64 bytes of report data, the buffer's size and a buffer
    // of exactly that size, all alive and ours for the call; the LibOS reads the first
    // two and writes at most `size` bytes into the third.
    let result = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            SGXIOC_GEN_DCAP_QUOTE as _,
            &mut arg as *mut GenDcapQuoteArg,
        )
    };
    check(result, "SGXIOC_GEN_DCAP_QUOTE")?;
    Ok(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_layouts_are_those_occlum_reads() {
        assert_eq!(size_of::<GetKeyArg>(), 16);
        assert_eq!(size_of::<GenDcapQuoteArg>(), 24);
        assert_eq!(align_of::<AlignedRequest>(), 8);
    }

    #[test]
    fn a_file_that_is_not_occlums_device_gives_an_error_not_a_key() {
        let file = tempfile_in_tmp();
        let mut key = [0u8; KEY_LEN];
        let err = get_key(&file, &[0; KEY_REQUEST_LEN], &mut key).unwrap_err();
        assert!(err.to_string().contains("SGXIOC_GET_KEY"), "{err}");
        assert_eq!(key, [0; KEY_LEN]);
        let err = dcap_quote(&file, &[0; REPORT_DATA_LEN]).unwrap_err();
        assert!(
            err.to_string().contains("SGXIOC_GET_DCAP_QUOTE_SIZE"),
            "{err}"
        );
    }

    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!("veritee-occlum-sys-{}", std::process::id()));
        let file = File::create(&path).expect("temp file");
        let _ = std::fs::remove_file(&path);
        file
    }
}
