;; unlock: a TEE-bound workload's module (flow 2). It runs only after the target's
;; launch check passed, and reads what the owner sealed into the workload:
;;   input 0  the configuration (here: a volume name)
;;   input 1  the secret CD1 (here: the volume's passphrase)
;; It writes "volume NAME unlocked with a passphrase of N bytes" and exits 0; it exits
;; 2 without a configuration and 3 without a passphrase. The passphrase itself never
;; appears in its output.
;;
;; Memory map: 0x000 messages, 0x100 configuration (1 KiB), 0x800 passphrase (1 KiB),
;; 0xC00 decimal scratch.
(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read"
    (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))

  (memory (export "memory") 1)

  (data (i32.const 0x00) "volume ")                          ;; 7
  (data (i32.const 0x10) " unlocked with a passphrase of ")  ;; 31
  (data (i32.const 0x40) " bytes")                           ;; 6

  ;; Writes `v` in decimal to the output.
  (func $decimal (param $v i32)
    (local $i i32)
    (local.set $i (i32.const 0xC10))
    (loop $digit
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (local.get $i)
        (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (drop (call $output_write (local.get $i) (i32.sub (i32.const 0xC10) (local.get $i)))))

  (func (export "run") (result i32)
    (local $config i32)
    (local $passphrase i32)
    (local.set $config
      (call $input_read (call $self_id) (i32.const 0) (i64.const 0)
        (i32.const 0x100) (i32.const 0x400)))
    (if (i32.le_s (local.get $config) (i32.const 0)) (then (return (i32.const 2))))
    (local.set $passphrase
      (call $input_read (call $self_id) (i32.const 1) (i64.const 0)
        (i32.const 0x800) (i32.const 0x400)))
    (if (i32.le_s (local.get $passphrase) (i32.const 0)) (then (return (i32.const 3))))
    (drop (call $output_write (i32.const 0x00) (i32.const 7)))
    (drop (call $output_write (i32.const 0x100) (local.get $config)))
    (drop (call $output_write (i32.const 0x10) (i32.const 31)))
    (call $decimal (local.get $passphrase))
    (drop (call $output_write (i32.const 0x40) (i32.const 6)))
    (i32.const 0))
)
