/* Prints the real and effective uid: the setuid test installs it setuid
 * root inside a VE and runs it as an ordinary user. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("%d %d\n", (int)getuid(), (int)geteuid());
	return 0;
}
