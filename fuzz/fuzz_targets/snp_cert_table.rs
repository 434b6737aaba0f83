//! The SEV-SNP certificate table a host hands the guest through configfs-tsm's auxblob.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = veritee_platform::hw::snp_certs::parse(data);
});
