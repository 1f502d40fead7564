/*
 * testkey.h - a fixed RSA-2048 key and its self-signed certificate for the
 * fuzz harnesses of the escrow share and record decoders (fuzz_share.c,
 * fuzz_escrow_record.c).  A THROWAWAY FUZZING KEY, public in this file and
 * protecting nothing: it exists so that seed inputs encrypted to the
 * certificate (the share seeds, which tests/fuzz/mkseeds.sh makes with
 * openssl cms, and the shares in the recovery package seeds) decrypt in
 * every run, and the fuzzer reaches the checks after decryption.  A key
 * generated per run could not decrypt a saved seed.  Never use it for
 * anything else.
 */
#ifndef LOCKBOX_FUZZ_TESTKEY_H
#define LOCKBOX_FUZZ_TESTKEY_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static const char fuzz_test_key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDiMLVp1eu5T9G9\n"
	"3dSpozKrUyRpnWIRmlPYonuk1Xhjn25q9/9bmBwJLcIUgWFRNLVgr63BlBRV6+c+\n"
	"bNU9ERvVlt/Gx/QuL6nec7Mi0FxMC/juCEtVIbkb/Fh/+8PkD4GpmdBuCqiAwfFo\n"
	"GZAmhYj5wEJFLXDh3eFSV3zZX4pWvIRmztNMXLg5f3p7cMRtvY8LKhgd4CFJ6Q3i\n"
	"X/sSnNnPC4R0dOxsITLP0n/OyGe0W9D++CxY/PLV2RE2NcsAY5smxnOXn5N/B70r\n"
	"fRd511oZtDA1QwwKXzoSB/TGhb3EQHIVgM7arN/6jX4pK+LvtQKku/coC4J3NsK0\n"
	"hxEdLkKpAgMBAAECggEAKB5LjwIKVUv6/5og5hW0Hv8YLkNj6Ytd48at94aFW+Yj\n"
	"R4XFHRHVpyseiVSJVkXrBcMjJnqFQNgeo8vZ5oLqVO/1sOQ2QxrhHjuXQk2CkVpu\n"
	"RInkEq1wj64qZEjbbc/yR4qolVv+lxfPIY+nKa31pZacKnjs1KLuHBS4aDWx68Ae\n"
	"t3feu9qOtyiMwCAWH4pggJWRja5HIZqACG5GmVxbzc7pZGmx9hmyRtTvs9eyLdXL\n"
	"eyN1qkrqAtkwS9g3nLlfNJuN+YZqmZkwPnvitRcIeF9EkW4Syhqlwe/1q19JFDcc\n"
	"VAuqwNQAssei0zNi85y77iTy5a5EACyJolBxAry+IQKBgQD3G18Gk271O9xfxXOf\n"
	"k2MiQldV0pGUiLw8spPi28QzABsEUnY2OGAwomct0pAOl+0OmGT0VpC/w6QfIALa\n"
	"ZuJLhEHiNz8eJWgsGAgzNwhwUVjCp/JQCueQ39iNGEjkOoa6sTAVt+hqqCL/0liT\n"
	"TKU6zO42tov9qcIWjQUucLV5PwKBgQDqVKEr9SgF53QnB3T9ZS1/Cu+bSQUmZHb0\n"
	"tkPsWgTCxj8Y/XTK/ytq0ivs1i1Kt9SRDDbhBcHoasIttA0o3ua1Vt9scQSS8v+5\n"
	"bhohBilZ2c4xdPGAFyIJeC6IYMhKv8+NNq7VZyfLU/6LI2sMiBynAj7XSi7JueMa\n"
	"HtQXdboiFwKBgCs/YRw3hX3qIiGo3xmYpAsE7WAZ4FzMqZU98+AKcoYyiIfzHrlS\n"
	"mJMqeUBtz8SeFmEtjs2ssNy/EuRXp+gthYGN/jHnVWajSV4ePqEoCpQNyKkY17Hm\n"
	"lqymYLIhA/DdxWK7TB0g+M5h6u43FEWDbo+h+jcdL9cPdOaZe8Sq+TflAoGAJ3eF\n"
	"hb/Os9/dwk0ROTR3SzRuUrsjsOmu11xzaDVpI9z795uItj/v8hff6g3Qpwr7NErY\n"
	"W2H63MhOWCBBLycLuHMfQkZuvMlMpNCUegdto4J5pf7KRgafZvTk8XdLhLt1m5Ug\n"
	"MTUkkKxe7NRUTVIHcWGBcAVAiB1U0KtskV70sJUCgYEA5sHXw7uIDOywtTvpMuKY\n"
	"yU7mVFIsfTcnR/K8O7IZ3dksOi89Q6B/G2J6CdHwdDjR+DJzySYvy/4E7n5aBT8F\n"
	"9Y259LMtVjH95oCTbiKmJw9SdhUPeBLo//8FLi5j+Umpm+9iXMhRM7cqraWNJhrh\n"
	"Soc7rYasubDdbVJjd5x9UkM=\n"
	"-----END PRIVATE KEY-----\n"
	;

static const char fuzz_test_cert_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDMzCCAhugAwIBAgIUc0gsO7DtNJ1Q1JNjZhriNwLY3ZMwDQYJKoZIhvcNAQEL\n"
	"BQAwKDEmMCQGA1UEAwwdbG9ja2JveCBmdXp6aW5nIHRocm93YXdheSBrZXkwIBcN\n"
	"MjYxMTI5MDAxNDQ5WhgPMjEyNjExMDUwMDE0NDlaMCgxJjAkBgNVBAMMHWxvY2ti\n"
	"b3ggZnV6emluZyB0aHJvd2F3YXkga2V5MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
	"MIIBCgKCAQEA4jC1adXruU/Rvd3UqaMyq1MkaZ1iEZpT2KJ7pNV4Y59uavf/W5gc\n"
	"CS3CFIFhUTS1YK+twZQUVevnPmzVPREb1Zbfxsf0Li+p3nOzItBcTAv47ghLVSG5\n"
	"G/xYf/vD5A+BqZnQbgqogMHxaBmQJoWI+cBCRS1w4d3hUld82V+KVryEZs7TTFy4\n"
	"OX96e3DEbb2PCyoYHeAhSekN4l/7EpzZzwuEdHTsbCEyz9J/zshntFvQ/vgsWPzy\n"
	"1dkRNjXLAGObJsZzl5+Tfwe9K30XeddaGbQwNUMMCl86Egf0xoW9xEByFYDO2qzf\n"
	"+o1+KSvi77UCpLv3KAuCdzbCtIcRHS5CqQIDAQABo1MwUTAdBgNVHQ4EFgQUfl5D\n"
	"PrHr9aZw7rGR4kYTVSsDx40wHwYDVR0jBBgwFoAUfl5DPrHr9aZw7rGR4kYTVSsD\n"
	"x40wDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAI8/dVuN7XfXV\n"
	"7yWp+k5dD+ml6Klk0I7dLZ4PTDV/xyxgft+jtiVl2P1aJFY6ww1iiJLAXG85/CCF\n"
	"UScTzxGaX0GtVrb2J9OJU89313kz+BTYwstMf5CJO6xDAbRifJuvZwzp6W5PUaW2\n"
	"Ap751Is2cGCluzGJNzJGPjQBhWVGbEmZTex8lp4IRQxuqySUy2uRRUfF8ps3ySIU\n"
	"W7M7fvuOSYKLJrhRbuwOFYJlDVAVnONoNzg8vxF7xAGbNfj+7W7UXeqGVZH7+BZ1\n"
	"3OlV9AGDhYiw3hXGjELuIyKQC1eI3lerLa9SJl7sWbV6n1Es65QNb6mYAyJWrq3A\n"
	"AaFeXY/g5g==\n"
	"-----END CERTIFICATE-----\n"
	;

/* The key and certificate above, or NULL (then the harness cannot run). */
static EVP_PKEY *
fuzz_test_key(void)
{
	BIO *b = BIO_new_mem_buf(fuzz_test_key_pem, -1);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL,
	    NULL) : NULL;

	BIO_free(b);
	return k;
}

static X509 *
fuzz_test_cert(void)
{
	BIO *b = BIO_new_mem_buf(fuzz_test_cert_pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

#endif
