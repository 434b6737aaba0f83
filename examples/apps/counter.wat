;; A counter and note service: the example application of flow 5 (secure fork).
;;
;; It keeps its state between calls, in linear memory and in a global the module
;; does not export (veritee exports it for snapshots when it prepares the module):
;;
;;   count    adds 1 to the counter at address 0 and answers it (8 bytes, little-endian)
;;   remember keeps the call's input (up to 4 KiB) as the note
;;   recall   answers the note
;;   calls    answers how many times `count` ran, from the internal global
;;   role     answers 0 until a fork, then 1 in the parent and 2 in the child
;;   forked   called by veritee on each side of a fork (0 parent, 1 child)
;;   split    asks veritee to fork it at the end of this call; answers what `fork`
;;            said (0 noted, -1 not allowed: started without --fork-peer)
;;   seal     seals the call's input (up to 8 KiB) for the other side of link 0 (in a
;;            child, its parent; in a parent, its first child): answers the message
;;   open     opens such a message from the other side: answers what it carried
;;            (both answer nothing and exit with key_op's negative code on failure:
;;            -1 no link yet, -4 not from the other side or altered)
;;
;; A child forked from it answers the same counter and note, then both go their way.
(module
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "fork" (func $fork (result i32)))
  (import "veritee" "key_op" (func $key_op (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $counted (mut i64) (i64.const 0))

  (func (export "count") (result i32)
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (global.set $counted (i64.add (global.get $counted) (i64.const 1)))
    (drop (call $output_write (i32.const 0) (i32.const 8)))
    (i32.const 0))

  ;; The note lives at 4096, its length at 8.
  (func (export "remember") (result i32)
    (i32.store (i32.const 8)
      (call $input_read (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 4096) (i32.const 4096)))
    (i32.const 0))

  (func (export "recall") (result i32)
    (drop (call $output_write (i32.const 4096) (i32.load (i32.const 8))))
    (i32.const 0))

  (func (export "calls") (result i32)
    (i64.store (i32.const 16) (global.get $counted))
    (drop (call $output_write (i32.const 16) (i32.const 8)))
    (i32.const 0))

  ;; The role lives at 24: 0 before any fork, then the side plus one.
  (func (export "forked") (param $role i32)
    (i32.store (i32.const 24) (i32.add (local.get $role) (i32.const 1))))

  (func (export "split") (result i32)
    (i32.store (i32.const 28) (call $fork))
    (drop (call $output_write (i32.const 28) (i32.const 4)))
    (i32.const 0))

  (func (export "seal") (result i32)
    (call $link (i32.const 1)))

  (func (export "open") (result i32)
    (call $link (i32.const 2)))

  ;; key_op with link 0: the request at 16384 (the operation, an empty associated
  ;; data's length, the input), the answer at 32768.
  (func $link (param $op i32) (result i32)
    (local $len i32)
    (local $n i32)
    (i32.store8 (i32.const 16384) (local.get $op))
    (i32.store (i32.const 16385) (i32.const 0))
    (local.set $len
      (call $input_read (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 16389) (i32.const 8192)))
    (local.set $n
      (call $key_op (i32.const 0) (i32.const 16384) (i32.add (i32.const 5) (local.get $len))
        (i32.const 32768) (i32.const 16384)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (local.get $n))))
    (drop (call $output_write (i32.const 32768) (local.get $n)))
    (i32.const 0))

  (func (export "role") (result i32)
    (drop (call $output_write (i32.const 24) (i32.const 4)))
    (i32.const 0)))
